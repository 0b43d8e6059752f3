// The model list's controls: the text filter (every word must appear in the owner/name,
// case-insensitive; Escape clears), the task and library filters, and the sort order, which
// reorders the rows themselves (the CSS fallback only changes their visual order). Shows the match
// count and says when nothing matches.
export function installFilter(): void {
  const input = document.getElementById('model-filter') as HTMLInputElement | null;
  const task = document.getElementById('model-task') as HTMLSelectElement | null;
  const library = document.getElementById('model-library') as HTMLSelectElement | null;
  const sort = document.getElementById('model-sort') as HTMLSelectElement | null;
  const list = document.getElementById('model-list');
  const count = document.getElementById('model-count');
  const empty = document.getElementById('model-empty');
  if (!input || !task || !library || !sort || !list || !count || !empty) return;
  const rows = Array.from(list.querySelectorAll<HTMLElement>(':scope > li'));
  const total = rows.length;
  const rank = (row: HTMLElement, key: string) => Number(row.style.getPropertyValue(`--${key[0]}`));

  const apply = () => {
    const words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const row of rows) {
      const match =
        words.every((word) => row.dataset.name!.includes(word)) &&
        (!task.value || row.dataset.task === task.value) &&
        (!library.value || row.dataset.library === library.value);
      row.hidden = !match;
      if (match) shown++;
    }
    const ordered = sort.value ? [...rows].sort((a, b) => rank(a, sort.value) - rank(b, sort.value)) : rows;
    list.append(...ordered);
    const filtered = words.length || task.value || library.value;
    count.textContent = filtered ? `${shown} of ${total} models` : `${total} models`;
    empty.hidden = shown > 0;
  };

  input.addEventListener('input', apply);
  for (const select of [task, library, sort]) select.addEventListener('change', apply);
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      event.preventDefault();
      input.value = '';
      apply();
    }
  });
  if (input.value || task.value || library.value || sort.value) apply();
}
