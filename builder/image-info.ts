// What the site (and anyone else) shows about a built image: its index digest, its sizes and
// its file list, read from the store (the file list comes from the layer's eStargz TOC).
import { ANNOTATION, type Descriptor, type ImageIndex, type ImageManifest } from './oci.ts';
import { ImageLayout } from './layout.ts';
import { NO_PREFETCH_LANDMARK } from './estargz.ts';
import { fileReadAt, readToc } from './toc.ts';

export interface ImageFile {
  /** Path inside the image, without the leading '/'. */
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

/** The first layer of the image `tag` points at, via its index (or a lone manifest). */
export async function resolveLayer(layout: ImageLayout, tag: string): Promise<{ index: Descriptor; layer: Descriptor } | undefined> {
  const index = await layout.resolveTag(tag);
  if (!index) return undefined;
  let manifestDigest = index.digest;
  if (index.mediaType.endsWith('index.v1+json')) {
    const parsed = await layout.readJson<ImageIndex>(index.digest);
    manifestDigest = parsed.manifests[0].digest;
  }
  const manifest = await layout.readJson<ImageManifest>(manifestDigest);
  return { index, layer: manifest.layers[0] };
}

/** Undefined when the store holds no such image and tag. */
export async function readImageInfo(store: string, image: string, tag: string): Promise<ImageInfo | undefined> {
  const layout = new ImageLayout(store, image);
  const resolved = await resolveLayer(layout, tag);
  if (!resolved) return undefined;
  const { index, layer } = resolved;
  const reader = await fileReadAt(layout.blobPath(layer.digest));
  try {
    const found = await readToc(reader.readAt, reader.size);
    const files = (found?.toc.entries ?? [])
      .filter((e) => e.type === 'reg' && e.name !== NO_PREFETCH_LANDMARK)
      .map((e) => ({ path: e.name, size: e.size ?? 0 }));
    return {
      image,
      tag,
      indexDigest: index.digest,
      compressedSize: layer.size,
      uncompressedSize: Number(layer.annotations?.[ANNOTATION.uncompressedSize] ?? 0),
      files,
    };
  } finally {
    await reader.close();
  }
}
