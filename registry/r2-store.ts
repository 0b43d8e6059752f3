// The store as objects in a Cloudflare R2 bucket, for the registry running as a Worker.
// Key layout (documented in registry/README.md):
//   tags/<name>:<tag>          body: the manifest digest; contentType: the manifest's media type
//   blobs/<name>@sha256:<hex>  the blob's bytes (manifests too, with their media type as contentType)
// Neither names nor tags may contain ':' or '@', so no two keys can collide, and a repository's
// tags are exactly the keys under `tags/<name>:`.
import { createHash } from 'node:crypto';
import type { ReferrerDescriptor } from '../client/referrers.ts';
import type { ByteRange } from './range.ts';
import { referrerDescriptor, subjectOf } from './referrers.ts';
import { manifestMediaType, type BlobBody, type BlobSink, type BlobStat, type ManifestRecord, type RegistryStore, type StoreWriter } from './store.ts';

/** Blobs larger than this are never treated as manifests. */
const MAX_MANIFEST = 4 * 1024 * 1024;
/**
 * Multipart part size: R2 wants every part but the last of one size and at least 5 MiB. It is also
 * what one blob being written holds in memory.
 */
export const PART_SIZE = 8 * 1024 * 1024;
const LIST_PAGE = 1000;

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
  get(key: string, options?: { range?: { offset: number; length: number } }): Promise<R2ObjectBody | null>;
  put(key: string, value: Uint8Array | string, options?: R2PutOptions): Promise<R2Object | null>;
  list(options: { prefix: string; cursor?: string; limit?: number }): Promise<{ objects: R2Object[]; truncated: boolean; cursor?: string }>;
  createMultipartUpload(key: string, options?: R2PutOptions): Promise<R2MultipartUpload>;
}

export const tagKey = (name: string, tag: string) => `tags/${name}:${tag}`;
export const blobKey = (name: string, digest: string) => `blobs/${name}@${digest}`;
export const referrerKey = (name: string, subject: string, digest: string) => `referrers/${name}@${subject}/${digest}`;


export class R2Store implements RegistryStore {
  readonly writer: StoreWriter;

  constructor(readonly bucket: R2Bucket) {
    this.writer = new R2Writer(bucket);
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
}

/**
 * Writes for the pull-through. A blob goes into a multipart upload at its final key, which R2
 * shows to nobody until complete(); complete() is called only once the sha256 of every byte
 * matched the digest, otherwise the upload is aborted. A blob smaller than one part is one put
 * (with the sha256 for R2 to check as well).
 */
class R2Writer implements StoreWriter {
  constructor(private bucket: R2Bucket) {}

  async createBlob(name: string, digest: string): Promise<BlobSink> {
    const key = blobKey(name, digest);
    const bucket = this.bucket;
    const hash = createHash('sha256');
    const part = new Uint8Array(PART_SIZE);
    let filled = 0;
    let upload: R2MultipartUpload | undefined;
    const parts: R2UploadedPart[] = [];
    let done = false;
    const flush = async () => {
      upload ??= await bucket.createMultipartUpload(key, { httpMetadata: { contentType: 'application/octet-stream' } });
      // A copy: the part buffer is refilled at once, whatever the binding does with the bytes it was given.
      parts.push(await upload.uploadPart(parts.length + 1, part.slice(0, filled)));
      filled = 0;
    };
    const abort = async () => {
      if (done) return;
      done = true;
      await upload?.abort().catch(() => {});
    };
    return {
      async write(chunk) {
        if (done) throw new Error(`blob ${digest}: write after the end`);
        hash.update(chunk);
        let offset = 0;
        while (offset < chunk.length) {
          const n = Math.min(PART_SIZE - filled, chunk.length - offset);
          part.set(chunk.subarray(offset, offset + n), filled);
          filled += n;
          offset += n;
          if (filled === PART_SIZE) await flush();
        }
      },
      async commit() {
        const hex = hash.digest('hex');
        if (`sha256:${hex}` !== digest) {
          await abort();
          throw new Error(`upstream blob ${digest} has digest sha256:${hex}`);
        }
        try {
          if (!upload) {
            await bucket.put(key, part.slice(0, filled), { sha256: hex, httpMetadata: { contentType: 'application/octet-stream' } });
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
