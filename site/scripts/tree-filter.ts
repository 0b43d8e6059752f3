// The file tree's filter: shows the files whose path holds every word typed (case-insensitive),
// hides folders with no match and opens the ones with matches; Escape clears.
export function installTreeFilters(): void {
  for (const tree of document.querySelectorAll<HTMLElement>('[data-file-tree]')) {
    const box = tree.querySelector<HTMLElement>('[data-tree-filter-box]');
    const input = box?.querySelector('input');
    const count = box?.querySelector('[data-tree-count]');
    if (!box || !input || !count) continue;
    box.hidden = false;
    const files = Array.from(tree.querySelectorAll<HTMLElement>('li[data-path]'));
    const folders = Array.from(tree.querySelectorAll<HTMLElement>('li[data-folder]'));
    const initiallyOpen = folders.map((li) => li.querySelector('details')!.open);
    const apply = () => {
      const words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      let shown = 0;
      for (const li of files) {
        const match = words.every((w) => li.dataset.path!.toLowerCase().includes(w));
        li.hidden = !match;
        if (match) shown++;
      }
      folders.forEach((li, i) => {
        const any = li.querySelector('li[data-path]:not([hidden])') !== null;
        li.hidden = !any;
        li.querySelector('details')!.open = words.length ? any : initiallyOpen[i];
      });
      count.textContent = words.length ? `${shown} of ${files.length} files` : '';
    };
    input.addEventListener('input', apply);
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        event.preventDefault();
        input.value = '';
        apply();
      }
    });
  }
}
