// The store as objects in a Cloudflare R2 bucket, for the registry running as a Worker.
// Key layout (documented in registry/README.md):
//   tags/<name>:<tag>          body: the manifest digest; contentType: the manifest's media type
//   blobs/<name>@sha256:<hex>  the blob's bytes (manifests too, with their media type as contentType)
// Neither names nor tags may contain ':' or '@', so no two keys can collide, and a repository's
// tags are exactly the keys under `tags/<name>:`.
import { createHash } from 'node:crypto';
import type { ReferrerDescriptor } from '../client/referrers.ts';
import { RegistryError } from './errors.ts';
import { resolveSpec, type ByteRange, type RangeSpec } from './range.ts';
import { referrerDescriptor, subjectOf } from './referrers.ts';
import { manifestMediaType, type BlobBody, type BlobRead, type BlobSink, type BlobStat, type ManifestRecord, type RegistryStore, type StoreWriter } from './store.ts';

/** Blobs larger than this are never treated as manifests. */
const MAX_MANIFEST = 4 * 1024 * 1024;
/**
 * R2's multipart limits (https://developers.cloudflare.com/r2/objects/multipart-objects/): at most
 * 10,000 parts, every part but the last of one size, 5 MiB to 5 GiB.
 */
export interface PartLimits {
  maxParts: number;
  /** The part size when the blob's size is unknown, and the least one used (bytes). */
  minPartSize: number;
  /** The largest part the writer holds: a part is buffered in memory (a Worker has 128 MB). */
  maxPartSize: number;
  /** Part sizes are whole multiples of this (bytes). */
  unit: number;
}
const MiB = 1024 * 1024;
export const R2_PART_LIMITS: PartLimits = { maxParts: 10_000, minPartSize: 8 * MiB, maxPartSize: 64 * MiB, unit: MiB };

/**
 * The multipart part size in bytes for a blob of `size` bytes (undefined: unknown): the least
 * multiple of `limits.unit` (1 MiB) that fits the blob in `limits.maxParts` parts, at least
 * `limits.minPartSize`. Throws when even parts of `limits.maxPartSize` cannot hold it, so such a
 * blob is refused before a byte is fetched.
 */
export function partSize(size: number | undefined, limits: PartLimits = R2_PART_LIMITS): number {
  if (size === undefined) return limits.minPartSize;
  const fitted = Math.max(limits.minPartSize, Math.ceil(size / limits.maxParts / limits.unit) * limits.unit);
  if (fitted > limits.maxPartSize) {
    throw new Error(`a blob of ${size} bytes needs ${limits.maxParts} parts of ${fitted} bytes; R2Writer holds at most ${limits.maxPartSize} per part`);
  }
  return fitted;
}
const LIST_PAGE = 1000;
/** How many outgrown blobs a writer remembers. */
const OUTGROWN_MAX = 1000;

// The subset of the Workers R2 API (https://developers.cloudflare.com/r2/api/workers/workers-api-reference/)
// this store uses, so the store type-checks without the Workers type package.
export interface R2Object {
  key: string;
  size: number;
  uploaded: Date;
  httpMetadata?: { contentType?: string };
}
export interface R2ObjectBody extends R2Object {
  body: ReadableStream<Uint8Array>;
  arrayBuffer(): Promise<ArrayBuffer>;
  text(): Promise<string>;
}
export type R2Range = { offset: number; length?: number } | { suffix: number };
export interface R2Conditional {
  uploadedAfter?: Date;
  /** Compare `uploaded` in whole seconds, as HTTP dates are. */
  secondsGranularity?: boolean;
}
export interface R2PutOptions {
  httpMetadata?: { contentType?: string };
  sha256?: string;
}
export interface R2UploadedPart {
  partNumber: number;
  etag: string;
}
export interface R2MultipartUpload {
  uploadPart(partNumber: number, value: Uint8Array): Promise<R2UploadedPart>;
  complete(parts: R2UploadedPart[]): Promise<R2Object>;
  abort(): Promise<void>;
}
export interface R2Bucket {
  head(key: string): Promise<R2Object | null>;
  get(key: string, options?: { range?: R2Range }): Promise<R2ObjectBody | null>;
  /** With `onlyIf` not met: the object without a body (an R2Object), not null. */
  get(key: string, options: { range?: R2Range; onlyIf?: R2Conditional }): Promise<R2ObjectBody | R2Object | null>;
  put(key: string, value: Uint8Array | string, options?: R2PutOptions): Promise<R2Object | null>;
  list(options: { prefix: string; cursor?: string; limit?: number }): Promise<{ objects: R2Object[]; truncated: boolean; cursor?: string }>;
  createMultipartUpload(key: string, options?: R2PutOptions): Promise<R2MultipartUpload>;
}

export const tagKey = (name: string, tag: string) => `tags/${name}:${tag}`;
export const blobKey = (name: string, digest: string) => `blobs/${name}@${digest}`;
export const referrerKey = (name: string, subject: string, digest: string) => `referrers/${name}@${subject}/${digest}`;


export class R2Store implements RegistryStore {
  readonly writer: StoreWriter;

  /** `limits`: R2's multipart limits (R2_PART_LIMITS) unless a test scales them down. */
  constructor(
    readonly bucket: R2Bucket,
    limits: PartLimits = R2_PART_LIMITS,
  ) {
    this.writer = new R2Writer(bucket, limits);
  }

  /** Every key under `prefix`, page by page. */
  private async *keys(prefix: string): AsyncGenerator<string> {
    let cursor: string | undefined;
    do {
      const page = await this.bucket.list({ prefix, cursor, limit: LIST_PAGE });
      for (const o of page.objects) yield o.key;
      cursor = page.truncated ? page.cursor : undefined;
    } while (cursor);
  }

  async repositories(): Promise<string[]> {
    const names = new Set<string>();
    for await (const key of this.keys('tags/')) names.add(key.slice('tags/'.length, key.lastIndexOf(':')));
    return [...names].sort();
  }

  async hasRepository(name: string): Promise<boolean> {
    return (await this.bucket.list({ prefix: tagKey(name, ''), limit: 1 })).objects.length > 0;
  }

  async tags(name: string): Promise<string[]> {
    const prefix = tagKey(name, '');
    const tags: string[] = [];
    for await (const key of this.keys(prefix)) tags.push(key.slice(prefix.length));
    return tags.sort();
  }

  async resolveTag(name: string, tag: string): Promise<string | undefined> {
    const object = await this.bucket.get(tagKey(name, tag));
    return object ? (await object.text()).trim() : undefined;
  }

  async manifest(name: string, digest: string): Promise<ManifestRecord | undefined> {
    const object = await this.bucket.get(blobKey(name, digest));
    if (!object) return undefined;
    if (object.size > MAX_MANIFEST) {
      await object.body.cancel().catch(() => {});
      return undefined;
    }
    const bytes = new Uint8Array(await object.arrayBuffer());
    let mediaType: string | undefined;
    try {
      mediaType = manifestMediaType(JSON.parse(new TextDecoder().decode(bytes)));
    } catch {
      return undefined; // a layer or config blob, not a manifest
    }
    return mediaType ? { digest, mediaType, bytes } : undefined;
  }

  /** The manifests put with `digest` as their subject (listed under `referrers/`), each read and checked again. */
  async referrers(name: string, digest: string): Promise<ReferrerDescriptor[]> {
    const found: ReferrerDescriptor[] = [];
    const prefix = referrerKey(name, digest, '');
    for await (const key of this.keys(prefix)) {
      const record = await this.manifest(name, key.slice(prefix.length));
      const referrer = record && referrerDescriptor(record, digest);
      if (referrer) found.push(referrer);
    }
    return found;
  }

  async statBlob(name: string, digest: string): Promise<BlobStat | undefined> {
    const object = await this.bucket.head(blobKey(name, digest));
    return object ? { size: object.size, modified: object.uploaded } : undefined;
  }

  /** The blob, or `range` of it read by R2 itself (only those bytes leave the bucket). */
  async openBlob(name: string, digest: string, range?: ByteRange): Promise<BlobBody | undefined> {
    const options = range ? { range: { offset: range.start, length: range.end - range.start + 1 } } : undefined;
    return (await this.bucket.get(blobKey(name, digest), options))?.body;
  }

  /**
   * One R2 `get` (RegistryStore.readBlob): R2 resolves `range` against the size and applies
   * If-Modified-Since as `onlyIf.uploadedAfter` in whole seconds; no `head` first. A range R2
   * refuses or that starts at or past the end: undefined, for the caller's 416 with the size.
   */
  async readBlob(name: string, digest: string, options: { range?: RangeSpec; modifiedSince?: Date }): Promise<BlobRead | undefined> {
    const { range: spec, modifiedSince } = options;
    let object: R2ObjectBody | R2Object | null;
    try {
      object = await this.bucket.get(blobKey(name, digest), {
        ...(spec ? { range: spec } : {}),
        ...(modifiedSince ? { onlyIf: { uploadedAfter: modifiedSince, secondsGranularity: true } } : {}),
      });
    } catch (error) {
      // R2 refuses a range past the end (InvalidRange, 10039; Miniflare fails some other way at
      // exactly the end): the caller's head settles it, and a real failure fails there again.
      if (spec) return undefined;
      throw error;
    }
    if (!object) return undefined;
    const stat = { size: object.size, modified: object.uploaded };
    if (!('body' in object)) return { stat, body: null };
    const range = spec && resolveSpec(spec, object.size);
    if (spec && !range) {
      await object.body.cancel().catch(() => {});
      return undefined;
    }
    return { stat, body: object.body, range };
  }
}

/** The least block a part's bytes are copied into (bytes): a part grows by blocks as bytes arrive. */
const MIN_BLOCK = 64 * 1024;

/**
 * Writes for the pull-through. A blob goes into a multipart upload at its final key, which R2
 * shows to nobody until complete(); complete() is called only once the sha256 of every byte
 * matched the digest, otherwise the upload is aborted. A blob smaller than one part is one put
 * (with the sha256 for R2 to check as well). The part size follows the blob's size when the
 * caller knows it (partSize), so the largest blobs fit R2's 10,000 parts; a blob of unknown size
 * that outgrows them fails at once with that reason, and later fills of it in this isolate are
 * refused before anything is fetched. The announced size is only the upstream's claim: a part is
 * held as blocks allocated as its bytes arrive (each at most the bytes before it, at least
 * MIN_BLOCK), so a fill holds at most twice what it received, never the part size it claims.
 */
class R2Writer implements StoreWriter {
  /** `<name>@<digest>` of blobs of unknown size that outgrew the parts (bounded: oldest dropped). */
  private outgrown = new Set<string>();

  constructor(
    private bucket: R2Bucket,
    private limits: PartLimits,
  ) {}

  /**
   * A sink for blob `digest` of `size` bytes (undefined: unknown). Throws RegistryError 502 (an
   * upstream blob this registry cannot hold) when `size` is beyond R2's parts, or the blob is of
   * unknown size and outgrew them before.
   */
  async createBlob(name: string, digest: string, size?: number): Promise<BlobSink> {
    const key = blobKey(name, digest);
    const { bucket, limits, outgrown } = this;
    const tooLarge = (reason: string) => new RegistryError(502, 'UNKNOWN', `upstream blob too large for this registry to hold: ${reason}`, { name, digest, size });
    let part: number;
    try {
      part = partSize(size, limits);
    } catch (error) {
      throw tooLarge((error as Error).message);
    }
    const tooMany = () =>
      `blob ${digest} is over ${limits.maxParts * part} bytes: more than R2's ${limits.maxParts} parts of ${part} bytes, and its size was not known in advance (no Content-Length from the upstream) to size the parts by`;
    if (size === undefined && outgrown.has(`${name}@${digest}`)) throw tooLarge(tooMany());
    const hash = createHash('sha256');
    /** The part being filled: blocks, all full but the last, which holds `free` more bytes. */
    let blocks: Uint8Array[] = [];
    let free = 0;
    let filled = 0;
    let written = 0;
    let upload: R2MultipartUpload | undefined;
    const parts: R2UploadedPart[] = [];
    let done = false;
    /** The part's bytes as one array (the blocks dropped). */
    const take = () => {
      const bytes = blocks.length === 1 ? blocks[0] : new Uint8Array(filled);
      if (blocks.length > 1) blocks.reduce((at, block) => (bytes.set(block, at), at + block.length), 0);
      blocks = [];
      filled = 0;
      return bytes;
    };
    const flush = async () => {
      if (parts.length === limits.maxParts) {
        if (outgrown.size >= OUTGROWN_MAX) outgrown.delete(outgrown.values().next().value!);
        outgrown.add(`${name}@${digest}`);
        throw new Error(tooMany());
      }
      upload ??= await bucket.createMultipartUpload(key, { httpMetadata: { contentType: 'application/octet-stream' } });
      parts.push(await upload.uploadPart(parts.length + 1, take()));
    };
    const abort = async () => {
      if (done) return;
      done = true;
      blocks = [];
      await upload?.abort().catch(() => {});
    };
    return {
      async write(chunk) {
        if (done) throw new Error(`blob ${digest}: write after the end`);
        if (size !== undefined && written + chunk.length > size) throw new Error(`blob ${digest}: more than the ${size} bytes announced`);
        hash.update(chunk);
        written += chunk.length;
        let offset = 0;
        while (offset < chunk.length) {
          if (free === 0) {
            // Doubling the part's blocks, up to the part (and, sized, the blob's end): no copy as it grows.
            const room = size === undefined ? part - filled : Math.min(part - filled, size - parts.length * part - filled);
            const block = new Uint8Array(Math.min(room, Math.max(MIN_BLOCK, filled)));
            blocks.push(block);
            free = block.length;
          }
          const n = Math.min(free, chunk.length - offset);
          const block = blocks[blocks.length - 1];
          block.set(chunk.subarray(offset, offset + n), block.length - free);
          free -= n;
          filled += n;
          offset += n;
          if (filled === part) await flush();
        }
      },
      async commit() {
        const hex = hash.digest('hex');
        if (`sha256:${hex}` !== digest || (size !== undefined && written !== size)) {
          await abort();
          throw new Error(`upstream blob ${digest} has digest sha256:${hex} and ${written} bytes${size === undefined ? '' : ` (announced: ${size})`}`);
        }
        try {
          if (free > 0) blocks.push(blocks.pop()!.subarray(0, -free));
          free = 0;
          if (!upload) {
            await bucket.put(key, take(), { sha256: hex, httpMetadata: { contentType: 'application/octet-stream' } });
          } else {
            if (filled > 0) await flush();
            await upload.complete(parts);
          }
          done = true;
        } catch (error) {
          await abort();
          throw error;
        }
      },
      abort,
    };
  }

  async putManifest(name: string, manifest: ManifestRecord, tag?: string): Promise<void> {
    const hex = createHash('sha256').update(manifest.bytes).digest('hex');
    if (`sha256:${hex}` !== manifest.digest) throw new Error(`upstream manifest ${manifest.digest} has digest sha256:${hex}`);
    const httpMetadata = { contentType: manifest.mediaType };
    await this.bucket.put(blobKey(name, manifest.digest), manifest.bytes, { sha256: hex, httpMetadata });
    // A manifest with a subject is listed under it, for the referrers API (after it is in place).
    const subject = subjectOf(manifest);
    if (subject) await this.bucket.put(referrerKey(name, subject, manifest.digest), '', { httpMetadata });
    // The tag is written only after the manifest it names is in place.
    if (tag !== undefined) await this.bucket.put(tagKey(name, tag), manifest.digest, { httpMetadata });
  }
}
