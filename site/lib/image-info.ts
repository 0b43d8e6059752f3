// The seam between the site and the image store. The store is read through builder/image-info.ts,
// the module the registry and the CLI share; a model that has not been built yields undefined
// and its page still renders (placeholder file path, no digest).

export interface ImageFile {
  /** Path inside the image, without a leading slash; regular files only. */
  path: string;
  size: number;
}

export interface ImageInfo {
  image: string;
  tag: string;
  indexDigest: string;
  compressedSize: number;
  uncompressedSize: number;
  files: ImageFile[];
}

type Reader = (store: string, image: string, tag: string) => Promise<ImageInfo | undefined>;

// A glob rather than a plain import, so the site builds (with every model "not built") in a
// checkout where the store reader does not exist yet.
const readers = import.meta.glob<{ readImageInfo: Reader }>('../../builder/image-info.ts');

let reader: Promise<Reader | undefined> | undefined;

async function storeReader(): Promise<Reader | undefined> {
  const load = Object.values(readers)[0];
  if (!load) return undefined;
  return (await load()).readImageInfo;
}

export async function readImageInfo(store: string, image: string, tag: string): Promise<ImageInfo | undefined> {
  reader ??= storeReader();
  const read = await reader;
  return read ? read(store, image, tag) : undefined;
}
