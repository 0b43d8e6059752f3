// The model list's controls: the text filter (every word must appear in the owner/name,
// case-insensitive; Escape clears), the task and library filters, and the sort order, which
// reorders the rows themselves. The text filter and the sort <select> are hidden until this runs
// (without JavaScript sorting is links to the sort pages). Shows the match count and says when
// nothing matches; marks #model-controls with data-script so the no-JS rule hiding the count
// under a filter (ModelList.astro) no longer applies.
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
  // data-order: the row's rank by name, size, downloads and in the catalog (the <select>'s values in that order).
  const ORDERS = ['name', 'size', 'downloads', ''];
  const ranks = new Map(rows.map((row) => [row, row.dataset.order!.split(' ').map(Number)]));
  const rank = (row: HTMLElement, key: string) => ranks.get(row)![ORDERS.indexOf(key)];

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
    list.append(...[...rows].sort((a, b) => rank(a, sort.value) - rank(b, sort.value)));
    const filtered = words.length || task.value || library.value;
    count.textContent = filtered ? `${shown} of ${total} models` : `${total} models`;
    empty.hidden = shown > 0;
  };

  for (const control of document.querySelectorAll<HTMLElement>('#model-controls [data-needs-script]')) control.hidden = false;
  // The count stays exact from here on: the no-JS rule that hides it under a filter stops applying.
  document.getElementById('model-controls')?.setAttribute('data-script', '');
  input.addEventListener('input', apply);
  for (const select of [task, library, sort]) select.addEventListener('change', apply);
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      event.preventDefault();
      input.value = '';
      apply();
    }
  });
  // A sort page's rows are already in its order; restored form state (Back) is applied.
  if (input.value || task.value || library.value || !sort.options[sort.selectedIndex].defaultSelected) apply();
}
