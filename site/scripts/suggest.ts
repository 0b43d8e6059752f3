// The 404 page's suggestions: the catalog names nearest to the path that was asked for (edit
// distance, case-insensitive, on the full name and on the name without its owner).

/** At most this many characters of the path are compared: a Hub name (owner/name) is at most 96 + 1 + 96. */
export const MAX_COMPARED = 200;

/**
 * The part of a requested path compared with the names: its first two segments (a model page is
 * /owner/name; a copied Hub URL goes on with /blob/main/…), lower-cased, at most MAX_COMPARED
 * characters. Each comparison costs its length times a name's, so a path of megabytes would
 * otherwise take seconds per name.
 */
export function comparedPart(wanted: string): string {
  return wanted.slice(0, 4 * MAX_COMPARED).toLowerCase().split('/').filter(Boolean).slice(0, 2).join('/').slice(0, MAX_COMPARED);
}

export function nearestNames(wanted: string, names: string[], count = 5): string[] {
  const target = comparedPart(wanted);
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
