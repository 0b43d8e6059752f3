// The 404 page's suggestions: the catalog names nearest to the path that was asked for (edit
// distance, case-insensitive, on the full name and on the name without its owner).
export function nearestNames(wanted: string, names: string[], count = 5): string[] {
  const target = wanted.toLowerCase().replace(/^\/+|\/+$/g, '');
  if (!target) return [];
  const score = (name: string) => {
    const lower = name.toLowerCase();
    const repo = lower.slice(lower.indexOf('/') + 1);
    return Math.min(distance(target, lower), distance(target, repo) + 1);
  };
  return names
    .map((name) => ({ name, d: score(name) }))
    .sort((a, b) => a.d - b.d || a.name.localeCompare(b.name))
    .slice(0, count)
    .map((s) => s.name);
}

/** Levenshtein distance, two rows. */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length];
}

/** Fill #suggestions with links to the nearest model pages. */
export function installSuggestions(): void {
  const data = document.getElementById('model-names');
  const box = document.getElementById('suggestions');
  const list = box?.querySelector('ul');
  if (!data || !box || !list) return;
  const names = JSON.parse(data.textContent ?? '[]') as string[];
  let wanted = location.pathname;
  try {
    wanted = decodeURIComponent(wanted);
  } catch {
    // keep the raw path
  }
  const nearest = nearestNames(wanted, names);
  if (!nearest.length) return;
  for (const name of nearest) {
    const link = document.createElement('a');
    link.href = '/' + name;
    link.textContent = name;
    link.className = 'font-medium text-indigo-700 hover:underline';
    const item = document.createElement('li');
    item.append(link);
    list.append(item);
  }
  box.hidden = false;
}
