// The catalog as the site sees it: loaded once per build, grouped into one page per image name.
import { loadCatalog, type ModelEntry } from '../../models/catalog.ts';
import { loadFacts, type FactsFile } from '../../models/facts.ts';
import { siteConfig } from './config.ts';
import { entryImageProblem, readImageInfo, readRemoteImageInfo, type ImageInfo } from './image-info.ts';

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

/** Image data for each entry of a page, from the registry when one is set, else the store (undefined where not built, or not labelled as the entry's repository and sha). */
export async function builtEntries(page: ModelPage): Promise<BuiltEntry[]> {
  const { store, registryUrl } = siteConfig();
  const read = (entry: ModelEntry) => (registryUrl ? readRemoteImageInfo(registryUrl, entry.image, entry.tag) : readImageInfo(store, entry.image, entry.tag));
  return Promise.all(
    page.entries.map(async (entry) => {
      const info = await read(entry);
      const problem = info && entryImageProblem(entry, info);
      // Another model's (or revision's) image is never shown as this entry's.
      if (problem) console.warn(`site: ${entry.name}: no image data shown: ${problem}`);
      return problem ? { entry, info: undefined, mismatch: problem } : { entry, info };
    }),
  );
}
