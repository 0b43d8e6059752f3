// Which catalog entries changed between two versions of models.yaml: what publishing must build
// (added, new sha, new tag) and what left the catalog. Order and formatting never count.
import { CatalogError, parseCatalog, type ModelEntry } from './catalog.ts';

export type ChangeKind = 'added' | 'sha' | 'tag' | 'removed';

export interface ModelChange {
  kind: ChangeKind;
  /** The entry as it is now (as it was, for a removed one). */
  model: ModelEntry;
  /** The entry it replaces, for 'sha' and 'tag'. */
  previous?: ModelEntry;
}

/** Entries that must be (re)built: everything but removals. */
export function toBuild(changes: ModelChange[]): ModelEntry[] {
  return changes.filter((c) => c.kind !== 'removed').map((c) => c.model);
}

function parseStrict(text: string, file: string): ModelEntry[] {
  const { models, problems } = parseCatalog(text, file);
  if (problems.length > 0) throw new CatalogError(problems);
  return models;
}

/**
 * The changes from `before` (undefined when the file did not exist) to `after`, in the order of
 * `after` (removals last). Entries are matched by image and tag; an image whose only difference
 * is its tag is a tag change, whatever the sha.
 */
export function changedModels(before: string | undefined, after: string, file = 'models/models.yaml'): ModelChange[] {
  const old = before === undefined ? [] : parseStrict(before, `${file} (before)`);
  const now = parseStrict(after, file);
  const key = (m: ModelEntry) => `${m.image}:${m.tag}`;
  const oldByKey = new Map(old.map((m) => [key(m), m]));
  const unmatched = new Set(old.filter((m) => !now.some((n) => key(n) === key(m))));
  const changes: ModelChange[] = [];
  for (const model of now) {
    const same = oldByKey.get(key(model));
    if (same) {
      if (same.sha !== model.sha) changes.push({ kind: 'sha', model, previous: same });
      continue;
    }
    const retagged = [...unmatched].find((m) => m.image === model.image);
    if (retagged) {
      unmatched.delete(retagged);
      changes.push({ kind: 'tag', model, previous: retagged });
    } else {
      changes.push({ kind: 'added', model });
    }
  }
  for (const model of unmatched) changes.push({ kind: 'removed', model });
  return changes;
}
