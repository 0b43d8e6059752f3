// The catalog as the site sees it: loaded once per build, grouped into one page per image name.
import { loadCatalog, type ModelEntry } from '../../models/catalog.ts';
import { loadFacts, type FactsFile } from '../../models/facts.ts';
import { siteConfig } from './config.ts';
import { DeadlineError, within } from './deadline.ts';
import { entryImageProblem, readImageInfo, readRemoteImageInfo, readRemoteTagDigest, readTagDigest, revisionTagProblem, type ImageInfo } from './image-info.ts';

export interface ModelPage {
  /** The Hugging Face name as first written in the catalog; the page lives at `/<name>`. */
  name: string;
  image: string;
  /** One entry per tag of this image, in catalog order. */
  entries: ModelEntry[];
}

export interface BuiltEntry {
  entry: ModelEntry;
  info: ImageInfo | undefined;
  /** Why the image the registry or store holds under the entry's tag is not the entry's (then `info` is undefined). */
  mismatch?: string;
  /** With `info`: why the revision tag `<image>:<sha>` is not offered (missing, or another index than `info.indexDigest`); undefined when it holds the same index. */
  revisionProblem?: string;
}

let catalog: Promise<ModelEntry[]> | undefined;

/** Every catalog entry, in catalog order (throws CatalogError for a broken catalog). */
export function catalogEntries(): Promise<ModelEntry[]> {
  catalog ??= loadCatalog(siteConfig().catalog);
  return catalog;
}

let facts: Promise<FactsFile> | undefined;

/** The facts file (models/facts.json): facts per Hugging Face name; a model never fetched has none. */
export function catalogFacts(): Promise<FactsFile> {
  facts ??= loadFacts(siteConfig().facts);
  return facts;
}

export async function modelPages(): Promise<ModelPage[]> {
  const pages = new Map<string, ModelPage>();
  for (const entry of await catalogEntries()) {
    const page = pages.get(entry.image);
    if (page) page.entries.push(entry);
    else pages.set(entry.image, { name: entry.name, image: entry.image, entries: [entry] });
  }
  return [...pages.values()];
}

const built = new Map<string, Promise<BuiltEntry>>();
const entryKey = (entry: ModelEntry) => JSON.stringify([entry.name, entry.sha, entry.image, entry.tag]);
/** Entry reads in flight at most: Astro renders pages one at a time, so the reads run ahead of them. */
const READS_IN_FLIGHT = 8;
let queuedAll: Promise<void> | undefined;
let inFlight = 0;
const waiting: (() => void)[] = [];

/**
 * The image data of one catalog entry, from the registry when one is set, else the store: read
 * once per build (the homepage row and the model page share it). `info` is undefined where the
 * tag is not built, or where its image is not labelled as the entry's repository and sha
 * (`mismatch` says why); with `info`, the revision tag is resolved too (`revisionProblem`).
 * The first call queues the reads of every catalog entry, in catalog order, at most 8 in flight:
 * awaited page after page, a registry that trickles would cost each entry its whole deadline in
 * turn (models x DEPOT_SITE_REGISTRY_DEADLINE_S); this way it costs about ceil(models / 8) x it.
 */
export async function builtEntry(entry: ModelEntry): Promise<BuiltEntry> {
  queuedAll ??= catalogEntries().then((entries) => entries.forEach(queued));
  await queuedAll;
  return queued(entry);
}

/** The memoized read of `entry`, queued behind the reads in flight when it is the first ask. */
function queued(entry: ModelEntry): Promise<BuiltEntry> {
  const key = entryKey(entry);
  let found = built.get(key);
  if (!found) {
    built.set(key, (found = inTurn(() => readBuiltEntry(entry))));
    // Read ahead of its page: a failure is the page's to report when it awaits it, not an unhandled rejection now.
    found.catch(() => undefined);
  }
  return found;
}

/** `work()` once fewer than READS_IN_FLIGHT others run (each read's deadline starts then, not while it waits). */
async function inTurn<T>(work: () => Promise<T>): Promise<T> {
  if (inFlight < READS_IN_FLIGHT) inFlight++;
  else await new Promise<void>((resolve) => waiting.push(resolve)); // the slot is handed over as it is
  try {
    return await work();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else inFlight--;
  }
}

/**
 * Reads from a registry end by one deadline per entry (DEPOT_SITE_REGISTRY_DEADLINE_S): a registry
 * that trickles its answers would otherwise keep the build running for as long as it likes. Past
 * it the entry's page is built without image data, and one warning line says why.
 */
async function readBuiltEntry(entry: ModelEntry): Promise<BuiltEntry> {
  const { registryUrl, registryDeadlineMs } = siteConfig();
  if (!registryUrl) return readEntry(entry, () => undefined);
  const until = Date.now() + registryDeadlineMs;
  // Each read's requests get the time left when the read starts (so none outlives the build by more
  // than the deadline); `within` ends them all together by it.
  const left = () => Math.max(1, until - Date.now());
  const late = `the registry's answers took more than ${registryDeadlineMs / 1000} s in all (DEPOT_SITE_REGISTRY_DEADLINE_S)`;
  try {
    return await within(readEntry(entry, left), registryDeadlineMs, late);
  } catch (error) {
    // A request that failed at the deadline (the transport's own timer) is the deadline too.
    if (!(error instanceof DeadlineError) && Date.now() < until) throw error;
    console.warn(`site: ${entry.name}: no image data shown: ${late}`);
    return { entry, info: undefined };
  }
}

/** `readBuiltEntry` from the registry (each request ending by `deadlineMs()`, when there is one) or the store. */
async function readEntry(entry: ModelEntry, deadlineMs: () => number | undefined): Promise<BuiltEntry> {
  const { store, registryUrl } = siteConfig();
  const info = await (registryUrl ? readRemoteImageInfo(registryUrl, entry.image, entry.tag, deadlineMs()) : readImageInfo(store, entry.image, entry.tag));
  if (!info) return { entry, info };
  const mismatch = entryImageProblem(entry, info);
  // Another model's (or revision's) image is never shown as this entry's.
  if (mismatch) {
    console.warn(`site: ${entry.name}: no image data shown: ${mismatch}`);
    return { entry, info: undefined, mismatch };
  }
  const revisionDigest = await (registryUrl ? readRemoteTagDigest(registryUrl, entry.image, entry.sha, deadlineMs()) : readTagDigest(store, entry.image, entry.sha));
  return { entry, info, revisionProblem: revisionTagProblem(entry.image, entry.sha, info.indexDigest, revisionDigest) };
}

/** Image data for each entry of a page (see `builtEntry`). */
export function builtEntries(page: ModelPage): Promise<BuiltEntry[]> {
  return Promise.all(page.entries.map(builtEntry));
}

/** Reads every entry (at most 8 at a time, see `builtEntry`), then tells why an entry's image is not that entry's (undefined when it is, or is not built). */
export async function entryMismatches(entries: ModelEntry[]): Promise<(entry: ModelEntry) => string | undefined> {
  const found = new Map<string, string>();
  for (const { entry, mismatch } of await Promise.all(entries.map(builtEntry))) if (mismatch) found.set(entryKey(entry), mismatch);
  return (entry) => found.get(entryKey(entry));
}
