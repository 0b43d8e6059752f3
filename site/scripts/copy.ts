// Copy buttons: any <button data-copy="…"> puts exactly that text on the clipboard.
export function installCopyButtons(): void {
  const status = document.getElementById('copy-status');
  document.addEventListener('click', async (event) => {
    const button = (event.target as Element | null)?.closest<HTMLButtonElement>('button[data-copy]');
    if (!button) return;
    const text = button.dataset.copy!;
    let ok = true;
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      ok = fallbackCopy(text);
    }
    const original = button.textContent;
    button.textContent = ok ? 'Copied' : 'Failed';
    if (status) status.textContent = ok ? `Copied: ${text}` : 'Copy failed';
    setTimeout(() => (button.textContent = original), 1500);
  });
}

function fallbackCopy(text: string): boolean {
  const area = document.createElement('textarea');
  area.value = text;
  area.setAttribute('readonly', '');
  area.style.position = 'fixed';
  area.style.opacity = '0';
  document.body.append(area);
  area.select();
  const ok = document.execCommand('copy');
  area.remove();
  return ok;
}
