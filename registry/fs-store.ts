// The store as a folder of OCI image layouts (builder/layout.ts), read for the registry.
// Everything a request needs is one stat away: index.json is re-read only when it changes
// (new builds and tags show up without a restart), and content-addressed facts are cached.
import { createHash } from 'node:crypto';
import { open, readFile, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { ImageLayout, listImages, sweepTempFiles } from '../image/layout.ts';
import { ANNOTATION, sha256Digest, type Descriptor } from '../image/oci.ts';
import { readAt } from '../image/read-at.ts';
import { sinkOf } from './pump.ts';
import type { ByteRange } from './range.ts';
import { isSha256Digest } from './names.ts';
import type { ReferrerDescriptor } from '../client/referrers.ts';
import { referrerDescriptor, subjectOf } from './referrers.ts';
import {
  manifestMediaType,
  type BlobBody,
  type BlobSink,
  type BlobStat,
  type ManifestRecord,
  NODE_PUMP,
  type PumpTarget,
  type RegistryStore,
  type StreamBody,
  type StoreWriter,
} from './store.ts';

const STREAM_CHUNK = 1024 * 1024;
/** Blobs larger than this are never treated as manifests. */
const MAX_MANIFEST = 4 * 1024 * 1024;
const MANIFEST_CACHE_BYTES = 32 * 1024 * 1024;
const STAT_CACHE_ENTRIES = 50_000;

interface IndexEntry {
  key: string;
  tags: Map<string, string>;
  sorted: string[];
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

export class LayoutStore implements RegistryStore {
  readonly root: string;
  readonly writer: StoreWriter;
  private layouts = new Map<string, ImageLayout>();
  private indexes = new Map<string, IndexEntry>();
  private stats = new Map<string, BlobStat>();
  private manifests = new Map<string, ManifestRecord | null>();
  private manifestBytes = 0;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.writer = new LayoutWriter(this);
  }

  layout(name: string): ImageLayout {
    let layout = this.layouts.get(name);
    if (!layout) {
      layout = new ImageLayout(this.root, name);
      // Names are validated by the routes; this is the belt to those braces.
      if (!layout.dir.startsWith(this.root + path.sep)) throw new Error(`image name leaves the store: ${name}`);
      if (this.layouts.size > 10_000) this.layouts.clear();
      this.layouts.set(name, layout);
    }
    return layout;
  }

  private async index(name: string): Promise<IndexEntry | undefined> {
    const file = path.join(this.layout(name).dir, 'index.json');
    let key: string;
    try {
      const s = await stat(file);
      key = `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch (error) {
      if (isMissing(error)) {
        this.indexes.delete(name);
        return undefined;
      }
      throw error;
    }
    const cached = this.indexes.get(name);
    if (cached && cached.key === key) return cached;
    let manifests: Descriptor[];
    try {
      manifests = (JSON.parse(await readFile(file, 'utf8')) as { manifests?: Descriptor[] }).manifests ?? [];
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
    const tags = new Map<string, string>();
    for (const d of manifests) {
      const tag = d.annotations?.[ANNOTATION.refName];
      if (tag && typeof d.digest === 'string') tags.set(tag, d.digest);
    }
    const entry = { key, tags, sorted: [...tags.keys()].sort() };
    this.indexes.set(name, entry);
    return entry;
  }

  async repositories(): Promise<string[]> {
    return listImages(this.root);
  }

  async hasRepository(name: string): Promise<boolean> {
    return (await this.index(name)) !== undefined;
  }

  async tags(name: string): Promise<string[]> {
    return (await this.index(name))?.sorted ?? [];
  }

  async resolveTag(name: string, tag: string): Promise<string | undefined> {
    return (await this.index(name))?.tags.get(tag);
  }

  /** Untagged manifests listed in index.json (how the builder stores attestations) that refer to `digest`. */
  async referrers(name: string, digest: string): Promise<ReferrerDescriptor[]> {
    const found: ReferrerDescriptor[] = [];
    for (const d of await this.layout(name).tagged()) {
      if (d.annotations?.[ANNOTATION.refName] || !isSha256Digest(d.digest)) continue;
      const record = await this.manifest(name, d.digest);
      const referrer = record && referrerDescriptor(record, digest);
      if (referrer) found.push(referrer);
    }
    return found;
  }

  async statBlob(name: string, digest: string): Promise<BlobStat | undefined> {
    const key = `${name}@${digest}`;
    const cached = this.stats.get(key);
    if (cached) return cached;
    try {
      const s = await stat(this.layout(name).blobPath(digest));
      if (!s.isFile()) return undefined;
      const result = { size: s.size, modified: s.mtime };
      if (this.stats.size >= STAT_CACHE_ENTRIES) this.stats.clear();
      this.stats.set(key, result);
      return result;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async manifest(name: string, digest: string): Promise<ManifestRecord | undefined> {
    const key = `${name}@${digest}`;
    const cached = this.manifests.get(key);
    if (cached !== undefined) {
      if (cached === null) return undefined;
      // Still there? (a cheap check; the stat is cached as well)
      if (await this.statBlob(name, digest)) return cached;
      this.forget(name, digest);
      return undefined;
    }
    const s = await this.statBlob(name, digest);
    if (!s) return undefined;
    let record: ManifestRecord | null = null;
    if (s.size <= MAX_MANIFEST) {
      let bytes: Buffer;
      try {
        bytes = await readFile(this.layout(name).blobPath(digest));
      } catch (error) {
        if (isMissing(error)) return this.forget(name, digest);
        throw error;
      }
      let mediaType: string | undefined;
      try {
        mediaType = manifestMediaType(JSON.parse(bytes.toString('utf8')));
      } catch {
        mediaType = undefined;
      }
      if (mediaType) record = { digest, mediaType, bytes };
    }
    this.remember(key, record);
    return record ?? undefined;
  }

  private remember(key: string, record: ManifestRecord | null): void {
    const size = record ? record.bytes.length : 0;
    if (this.manifestBytes + size > MANIFEST_CACHE_BYTES || this.manifests.size > 100_000) {
      this.manifests.clear();
      this.manifestBytes = 0;
    }
    this.manifests.set(key, record);
    this.manifestBytes += size;
  }

  forget(name: string, digest: string): undefined {
    const key = `${name}@${digest}`;
    this.stats.delete(key);
    const m = this.manifests.get(key);
    if (m) this.manifestBytes -= m.bytes.length;
    this.manifests.delete(key);
    return undefined;
  }

  async openBlob(name: string, digest: string, range?: ByteRange): Promise<BlobBody | undefined> {
    let handle: FileHandle;
    try {
      handle = await open(this.layout(name).blobPath(digest), 'r');
    } catch (error) {
      if (isMissing(error)) return this.forget(name, digest);
      throw error;
    }
    let start = range?.start ?? 0;
    let end = range?.end;
    if (end === undefined) {
      try {
        end = (await handle.stat()).size - 1;
      } catch (error) {
        await handle.close();
        throw error;
      }
    }
    const length = end - start + 1;
    if (length <= SMALL_CHUNK) {
      try {
        const buffer = await readAt(handle, length, start);
        if (buffer.length < length) throw new Error(`blob ${digest} is shorter than expected`);
        return buffer;
      } finally {
        await handle.close();
      }
    }
    return fileStream(handle, start, end, digest);
  }

  async close(): Promise<void> {
    this.indexes.clear();
    this.stats.clear();
    this.manifests.clear();
  }
}

/** Bytes start..end (inclusive) of an open file as a web stream that closes the file when done. */
function fileStream(handle: FileHandle, start: number, end: number, digest: string): StreamBody {
  let position = start;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await handle.close().catch(() => {});
  };
  const stream: StreamBody = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const want = Math.min(STREAM_CHUNK, end - position + 1);
        const buffer = Buffer.allocUnsafe(want);
        const { bytesRead } = await handle.read(buffer, 0, want, position);
        if (bytesRead === 0) throw new Error(`blob ${digest} is shorter than expected`);
        position += bytesRead;
        controller.enqueue(bytesRead === want ? buffer : buffer.subarray(0, bytesRead));
        if (position > end) {
          await close();
          controller.close();
        }
      } catch (error) {
        await close();
        controller.error(error);
      }
    },
    async cancel() {
      await close();
    },
  });
  stream[NODE_PUMP] = async (out) => {
    closed = true; // the pump owns (and closes) the handle from here on
    try {
      return await pumpFile(handle, start, end, digest, out);
    } finally {
      await handle.close().catch(() => {});
    }
  };
  return stream;
}

/**
 * Pump buffers. At most LARGE_BUFFERS of STREAM_CHUNK bytes exist at once (reused once their write
 * completed); past that a response gets a SMALL_CHUNK buffer of its own. So clients that stop
 * reading hold at most LARGE_BUFFERS MiB between them plus SMALL_CHUNK each, never a MiB each.
 * Bodies up to SMALL_CHUNK are read into memory in one go (no more than a pump buffer).
 */
const LARGE_BUFFERS = 64;
const SMALL_CHUNK = 64 * 1024;
const freeBuffers: Buffer[] = [];
let largeBuffers = 0;

function takeBuffer(): Buffer {
  const free = freeBuffers.pop();
  if (free) return free;
  if (largeBuffers >= LARGE_BUFFERS) return Buffer.allocUnsafe(SMALL_CHUNK);
  largeBuffers++;
  return Buffer.allocUnsafeSlow(STREAM_CHUNK);
}

/** `written`: the socket no longer reads it (a buffer still queued in a dead socket is dropped, not reused). */
function giveBack(buffer: Buffer, written: boolean): void {
  if (buffer.length !== STREAM_CHUNK) return;
  if (written) freeBuffers.push(buffer);
  else largeBuffers--;
}

/**
 * Bytes start..end of a file into `out` (a NodePump: `out` is not ended), one buffer at a time:
 * the next chunk is read only once the socket took the previous one (the kernel's send buffer
 * keeps the wire busy meanwhile), so a client that stops reading stops the pump, and the server's
 * idle timeout then closes it.
 */
async function pumpFile(handle: FileHandle, start: number, end: number, digest: string, out: PumpTarget): Promise<boolean> {
  const sink = sinkOf(out);
  const buffer = takeBuffer();
  let written = true;
  try {
    for (let position = start; position <= end; ) {
      if (sink.gone) return false;
      const want = Math.min(buffer.length, end - position + 1);
      const { bytesRead } = await handle.read(buffer, 0, want, position);
      if (bytesRead === 0) throw new Error(`blob ${digest} is shorter than expected`);
      position += bytesRead;
      written = await sink.write(buffer.subarray(0, bytesRead));
      if (!written) return false;
    }
    return true;
  } finally {
    sink.release();
    giveBack(buffer, written);
  }
}

/** Writes for the pull-through cache: temp file, digest checked while writing, then rename. */
class LayoutWriter implements StoreWriter {
  private tagLocks = new Map<string, Promise<void>>();
  /** Temp files of a killed writer (a serve stopped mid-fill) are removed before the first fill. */
  private swept: Promise<unknown> | undefined;

  constructor(private store: LayoutStore) {}

  async createBlob(name: string, digest: string): Promise<BlobSink> {
    await (this.swept ??= sweepTempFiles(this.store.root).catch(() => 0));
    const layout = this.store.layout(name);
    const temp = await layout.tempBlobPath();
    const handle = await open(temp, 'wx');
    const hash = createHash('sha256');
    let done = false;
    const abort = async () => {
      if (done) return;
      done = true;
      await handle.close().catch(() => {});
      await rm(temp, { force: true });
    };
    return {
      async write(chunk) {
        hash.update(chunk);
        let offset = 0;
        while (offset < chunk.length) {
          const { bytesWritten } = await handle.write(chunk, offset, chunk.length - offset);
          offset += bytesWritten;
        }
      },
      commit: async () => {
        const actual = `sha256:${hash.digest('hex')}`;
        if (actual !== digest) {
          await abort();
          throw new Error(`upstream blob ${digest} has digest ${actual}`);
        }
        done = true;
        await handle.sync();
        await handle.close();
        await layout.commitBlob(temp, digest);
        this.store.forget(name, digest);
      },
      abort,
    };
  }

  async putManifest(name: string, manifest: ManifestRecord, tag?: string): Promise<void> {
    const layout = this.store.layout(name);
    const actual = sha256Digest(manifest.bytes);
    if (actual !== manifest.digest) throw new Error(`upstream manifest ${manifest.digest} has digest ${actual}`);
    await layout.writeBlob(Buffer.from(manifest.bytes));
    this.store.forget(name, manifest.digest);
    // A referrer (a manifest with a subject) is listed untagged in index.json, as `build --attest`
    // stores attestations, so the referrers API lists it from the cache too.
    if (tag === undefined && !subjectOf(manifest)) return;
    const descriptor = { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.bytes.length };
    // index.json is read-modify-write: one change of an image's at a time.
    const previous = this.tagLocks.get(name) ?? Promise.resolve();
    const next = previous.then(() => (tag === undefined ? layout.addManifest(descriptor) : layout.setTag(tag, descriptor)));
    const settled = next.catch(() => {});
    this.tagLocks.set(name, settled);
    try {
      await next;
    } finally {
      if (this.tagLocks.get(name) === settled) this.tagLocks.delete(name);
    }
  }
}
