// What the site (and anyone else) shows about a built image: its index digest, its sizes and
// its file list (from the layer's eStargz TOC), read from the store or from any registry.
import { ANNOTATION, type Descriptor, type ImageIndex, type ImageManifest } from '../image/oci.ts';
import { ImageLayout } from '../image/layout.ts';
import { NO_PREFETCH_LANDMARK } from '../image/estargz.ts';
import { RegistryClient } from '../client/remote.ts';
import { fileReadAt } from '../image/read-at.ts';
import { readVouchedToc, type ReadAt } from '../image/toc.ts';

export interface ImageFile {
  /** Path inside the image, without the leading '/'. */
  path: string;
  size: number;
  /** `sha256:<hex>` of the content, as the eStargz TOC states it (vouched for by the layer's TOC digest). */
  digest?: string;
}

export interface ImageInfo {
  image: string;
  tag: string;
  indexDigest: string;
  compressedSize: number;
  uncompressedSize: number;
  files: ImageFile[];
  /** The index's labels: the Hub repository URL (ANNOTATION.source) and commit (ANNOTATION.revision) it claims. */
  source?: string;
  revision?: string;
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

async function describe(image: string, tag: string, index: { digest: string; annotations?: Record<string, string> }, layer: Descriptor, readAt: ReadAt): Promise<ImageInfo> {
  const found = await readVouchedToc(readAt, layer).catch((error: Error) => {
    throw new Error(`${image}:${tag}: ${error.message}`);
  });
  const files = (found?.toc.entries ?? [])
    .filter((e) => e.type === 'reg' && e.name !== NO_PREFETCH_LANDMARK)
    .map((e) => ({ path: e.name, size: e.size ?? 0, digest: e.digest }));
  return {
    image,
    tag,
    indexDigest: index.digest,
    source: index.annotations?.[ANNOTATION.source],
    revision: index.annotations?.[ANNOTATION.revision],
    compressedSize: layer.size,
    uncompressedSize: Number(layer.annotations?.[ANNOTATION.uncompressedSize] ?? 0),
    files,
  };
}

/** From the store; undefined when it holds no such image and tag. */
export async function readImageInfo(store: string, image: string, tag: string): Promise<ImageInfo | undefined> {
  const layout = new ImageLayout(store, image);
  const resolved = await resolveLayer(layout, tag);
  if (!resolved) return undefined;
  const reader = await fileReadAt(layout.blobPath(resolved.layer.digest));
  try {
    const annotations = resolved.index.mediaType.endsWith('index.v1+json') ? (await layout.readJson<ImageIndex>(resolved.index.digest)).annotations : undefined;
    return await describe(image, tag, { digest: resolved.index.digest, annotations }, resolved.layer, reader.readAt);
  } finally {
    await reader.close();
  }
}

/** The digest the store's `tag` of `image` points at (an index, or a lone manifest); undefined when it has no such tag. */
export async function readTagDigest(store: string, image: string, tag: string): Promise<string | undefined> {
  return (await new ImageLayout(store, image).resolveTag(tag))?.digest;
}

/** A client of the registry at `baseUrl` (`http(s)://host[:port][/prefix]`), each request ending by `deadlineMs` when given, and the repository of `image` there. */
export function registryImage(baseUrl: string, image: string, deadlineMs?: number): { client: RegistryClient; repository: string } {
  const url = new URL(baseUrl);
  const client = new RegistryClient(url.host, { insecure: url.protocol === 'http:', deadlineMs });
  return { client, repository: [url.pathname.replace(/^\/+|\/+$/g, ''), image].filter(Boolean).join('/') };
}

/**
 * From a registry at `baseUrl` (`http(s)://host[:port][/prefix]`): the index, one manifest and
 * the layer's footer and TOC, fetched with range requests, each request ending by `deadlineMs`
 * (ms) when given. Undefined when the registry has no such tag.
 */
export async function readRemoteImageInfo(baseUrl: string, image: string, tag: string, deadlineMs?: number): Promise<ImageInfo | undefined> {
  const { client, repository } = registryImage(baseUrl, image, deadlineMs);
  const top = await client.manifest(repository, tag, { optional: true });
  if (!top) return undefined;
  const { manifest } = await client.imageManifest(repository, top.digest);
  const layer = manifest.layers[0];
  return describe(image, tag, { digest: top.digest, annotations: top.json.annotations }, layer, (offset, length) => client.readRange(repository, layer, offset, length));
}

/** The digest of the manifest a registry's `tag` of `image` serves (the bytes received, hashed), the request ending by `deadlineMs` (ms) when given; undefined when the registry has no such tag. */
export async function readRemoteTagDigest(baseUrl: string, image: string, tag: string, deadlineMs?: number): Promise<string | undefined> {
  const { client, repository } = registryImage(baseUrl, image, deadlineMs);
  return (await client.manifest(repository, tag, { optional: true }))?.digest;
}
