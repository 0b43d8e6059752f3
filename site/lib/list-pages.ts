// The model list's orders and the one-segment pages that work without JavaScript: a page per sort
// order (its rows in that order in the DOM, so reading and Tab order follow what is seen) and a
// page per repository name without its owner (the most common wrong URL), listing the catalog
// models of that name.
import { SITE_PATHS, type ModelEntry } from '../../models/catalog.ts';
import type { ModelFacts } from '../../models/facts.ts';

export const SORT_KEYS = ['name', 'size', 'downloads'] as const;
export type SortKey = (typeof SORT_KEYS)[number];

export const SORT_LABELS: Record<SortKey, string> = { name: 'Name', size: 'Size (largest first)', downloads: 'Downloads (most first)' };

/**
 * The path of the page listing the models in `key` order: `/sort--size`. A catalog name can never
 * be this path: `nameProblem` (models/catalog.ts) refuses "--" in a name, as the Hub does. (Model
 * pages are not always two segments: bare legacy names such as `gpt2` are one.)
 */
export function sortPath(key: SortKey): string {
  return `/sort--${key}`;
}

/** Each entry's position (0-based) in each sort order; entries without a value come last, ties in catalog order. */
export function sortRanks(entries: ModelEntry[], facts: Record<string, ModelFacts>): Record<SortKey, number[]> {
  const known = (e: ModelEntry) => facts[e.name];
  const ranks = (key: (e: ModelEntry) => number | string | undefined, descending: boolean): number[] => {
    const order = entries.map((e, i) => ({ i, v: key(e) }));
    order.sort((a, b) => {
      if (a.v === undefined || b.v === undefined) return a.v === b.v ? a.i - b.i : a.v === undefined ? 1 : -1;
      const c = typeof a.v === 'string' ? a.v.localeCompare(b.v as string) : (a.v as number) - (b.v as number);
      return (descending ? -c : c) || a.i - b.i;
    });
    const rank: number[] = [];
    order.forEach(({ i }, position) => (rank[i] = position));
    return rank;
  };
  return {
    name: ranks((e) => e.name.toLowerCase(), false),
    // A size is only the entry's when the facts were fetched for its sha.
    size: ranks((e) => (known(e)?.sha === e.sha ? known(e)?.bytes : undefined), true),
    downloads: ranks((e) => known(e)?.downloads, true),
  };
}

export interface OwnerlessPage {
  /** The repository name as a catalog entry spells it; the page lives at `/<repo>`. */
  repo: string;
  /** Catalog names (owner/repo) whose repository part is `repo`, case-insensitively, in catalog order. */
  names: string[];
}

/**
 * One page per repository name of the `owner/repo` entries, compared lower-cased: `Foo/Bar` and
 * `x/bar` share one page, at the spelling first written in the catalog (`/Bar`), listing both.
 * Two paths that differ only in case would be one file on a case-insensitive host or file system,
 * one page overwriting the other. Skipped, since the path is already another page: a name equal
 * (case-insensitively) to a bare legacy catalog name (`/gpt2` is that model's page) or to a
 * path the site serves itself (SITE_PATHS, which bare catalog names may not take either). Sort pages cannot collide: a repository name never contains "--".
 */
export function ownerlessPages(entries: ModelEntry[]): OwnerlessPage[] {
  const taken = new Set(entries.filter((e) => !e.name.includes('/')).map((e) => e.name.toLowerCase()));
  const byRepo = new Map<string, string[]>();
  for (const { name } of entries) {
    const slash = name.indexOf('/');
    if (slash < 0) continue;
    const key = name.slice(slash + 1).toLowerCase();
    const names = byRepo.get(key) ?? [];
    if (!names.includes(name)) names.push(name);
    byRepo.set(key, names);
  }
  return [...byRepo]
    .filter(([key]) => !taken.has(key) && !SITE_PATHS.test(key))
    .map(([, names]) => ({ repo: names[0].slice(names[0].indexOf('/') + 1), names }));
}
