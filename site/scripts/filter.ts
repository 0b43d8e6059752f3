// The model filter: narrows the list as you type (case-insensitive; every word must appear in the
// owner/name), shows the match count, Escape clears, and an empty result says so.
export function installFilter(): void {
  const input = document.getElementById('model-filter') as HTMLInputElement | null;
  const count = document.getElementById('model-count');
  const empty = document.getElementById('model-empty');
  const rows = Array.from(document.querySelectorAll<HTMLElement>('#model-list > li'));
  if (!input || !count || !empty) return;
  const names = rows.map((row) => row.dataset.name ?? '');
  const total = rows.length;

  const apply = () => {
    const words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    rows.forEach((row, i) => {
      const match = words.every((word) => names[i].includes(word));
      row.hidden = !match;
      if (match) shown++;
    });
    count.textContent = words.length ? `${shown} of ${total} models` : `${total} models`;
    empty.hidden = shown > 0;
  };

  input.addEventListener('input', apply);
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      event.preventDefault();
      input.value = '';
      apply();
    }
  });
  if (input.value) apply();
}
