// The store: one OCI image layout per image name (`<store>/<image>/{oci-layout,index.json,blobs/sha256/…}`).
// The builder writes it, the registry serves it and the site reads it, all through this module.
// Writes are atomic: content goes to a hidden temp file, its digest is checked, then it is renamed
// into place, and a tag is added to index.json only after everything it points to is there.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ANNOTATION, isDigest, MEDIA_TYPE, sha256Digest, type Descriptor } from './oci.ts';

export const DEFAULT_STORE = '.depot/store';
/** Temp files live here, under the store; names starting with '.' are never images. */
const TEMP_DIR = '.tmp';
const LAYOUT_VERSION = JSON.stringify({ imageLayoutVersion: '1.0.0' });

interface LayoutIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
}

export class ImageLayout {
  /** `image` is the lower-cased image name; it may contain slashes. */
  constructor(
    readonly store: string,
    readonly image: string,
  ) {}

  get dir(): string {
    return path.join(this.store, ...this.image.split('/'));
  }

  blobPath(digest: string): string {
    if (!isDigest(digest)) throw new Error(`not a sha256 digest: ${digest}`);
    return path.join(this.dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
  }

  // ---- reading ----

  /** The descriptors in index.json (one per tag, and untagged artifacts), or [] when the image has never been built. */
  async tagged(): Promise<Descriptor[]> {
    try {
      const index = JSON.parse(await readFile(path.join(this.dir, 'index.json'), 'utf8')) as LayoutIndex;
      return index.manifests ?? [];
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
  }

  async tags(): Promise<string[]> {
    return (await this.tagged()).map((d) => d.annotations?.[ANNOTATION.refName]).filter((t): t is string => !!t);
  }

  async resolveTag(tag: string): Promise<Descriptor | undefined> {
    return (await this.tagged()).find((d) => d.annotations?.[ANNOTATION.refName] === tag);
  }

  /** Size of a blob, or undefined when the layout does not hold it. */
  async blobSize(digest: string): Promise<number | undefined> {
    try {
      return (await stat(this.blobPath(digest))).size;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  /** The last byte of the blob `blob` names (undefined when it is empty or not in the layout). */
  async lastByte(blob: Pick<Descriptor, 'digest' | 'size'>): Promise<number | undefined> {
    if (blob.size <= 0) return undefined;
    const handle = await open(this.blobPath(blob.digest), 'r').catch(() => undefined);
    if (!handle) return undefined;
    try {
      const { bytesRead, buffer } = await handle.read(Buffer.alloc(1), 0, 1, blob.size - 1);
      return bytesRead === 1 ? buffer[0] : undefined;
    } finally {
      await handle.close();
    }
  }

  async readBlob(digest: string): Promise<Buffer> {
    return readFile(this.blobPath(digest));
  }

  async readJson<T>(digest: string): Promise<T> {
    return JSON.parse((await this.readBlob(digest)).toString('utf8')) as T;
  }

  // ---- writing ----

  private async prepare(): Promise<string> {
    const blobs = path.join(this.dir, 'blobs', 'sha256');
    await mkdir(blobs, { recursive: true });
    await writeAtomic(path.join(this.dir, 'oci-layout'), LAYOUT_VERSION);
    return blobs;
  }

  /**
   * A fresh path in the store's hidden temp folder (`<pid>-<random>`, so sweepTempFiles can tell
   * whose it is): on the store's file system, so the final
   * rename is atomic, and outside every layout, so a failed write leaves no trace in an image.
   */
  async tempBlobPath(): Promise<string> {
    const temp = path.join(this.store, TEMP_DIR);
    await mkdir(temp, { recursive: true });
    return path.join(temp, `${process.pid}-${randomBytes(6).toString('hex')}`);
  }

  /**
   * Move a finished temp file into place. `digest` must have been computed over exactly the
   * bytes written to it (the writer hashes as it writes, so the blob is not read twice).
   */
  async commitBlob(tempPath: string, digest: string): Promise<void> {
    await removeOnError(tempPath, async () => {
      await this.prepare();
      await rename(tempPath, this.blobPath(digest));
    });
  }

  async writeBlob(bytes: Buffer): Promise<string> {
    const digest = sha256Digest(bytes);
    if ((await this.blobSize(digest)) === bytes.length) return digest;
    const temp = await this.tempBlobPath();
    await removeOnError(temp, () => writeFile(temp, bytes, { flush: true, flag: 'wx' }));
    await this.commitBlob(temp, digest);
    return digest;
  }

  /**
   * Undo a failed write: remove `digests` (blobs this writer added, which nothing references yet),
   * then, when no tag was ever written, the layout folder itself and any parents it leaves empty.
   */
  async discard(digests: string[]): Promise<void> {
    for (const digest of digests) await rm(this.blobPath(digest), { force: true });
    if ((await this.tagged()).length > 0) return;
    await rm(this.dir, { recursive: true, force: true });
    for (let dir = path.dirname(this.dir); dir.startsWith(this.store + path.sep); dir = path.dirname(dir)) {
      if ((await readdir(dir).catch(() => [''])).length > 0) break;
      await rm(dir, { recursive: true, force: true });
    }
  }

  /**
   * List `descriptor` in index.json without a tag (how an OCI 1.1 artifact, e.g. an attestation
   * whose `subject` is a tagged index, sits in the layout); once is enough.
   */
  async addManifest(descriptor: Descriptor): Promise<void> {
    await this.prepare();
    const manifests = await this.tagged();
    if (manifests.some((d) => d.digest === descriptor.digest && !d.annotations?.[ANNOTATION.refName])) return;
    const index: LayoutIndex = { schemaVersion: 2, mediaType: MEDIA_TYPE.index, manifests: [...manifests, descriptor] };
    await writeAtomic(path.join(this.dir, 'index.json'), JSON.stringify(index, null, 2) + '\n');
  }

  /** Point `tag` at `descriptor`, keeping every other tag. Call only once its blobs are all written. */
  async setTag(tag: string, descriptor: Descriptor): Promise<void> {
    await this.prepare();
    const others = (await this.tagged()).filter((d) => d.annotations?.[ANNOTATION.refName] !== tag);
    const tagged = { ...descriptor, annotations: { ...descriptor.annotations, [ANNOTATION.refName]: tag } };
    const index: LayoutIndex = { schemaVersion: 2, mediaType: MEDIA_TYPE.index, manifests: [...others, tagged] };
    await writeAtomic(path.join(this.dir, 'index.json'), JSON.stringify(index, null, 2) + '\n');
  }
}

/** Write a file whole or not at all: a temp file beside it, then a rename. */
export async function writeAtomic(file: string, content: string): Promise<void> {
  const temp = `${file}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  await removeOnError(temp, async () => {
    await writeFile(temp, content, { flush: true, flag: 'wx' }); // exclusive: never through a planted link
    await rename(temp, file);
  });
}

/** Runs `write`; if it fails (a full disk), `temp` is removed before the error goes on. */
async function removeOnError(temp: string, write: () => Promise<void>): Promise<void> {
  try {
    await write();
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

export async function fileDigest(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return `sha256:${hash.digest('hex')}`;
}

/** Every image name in the store (folders holding an index.json), sorted. */
export async function listImages(store: string): Promise<string[]> {
  const images: string[] = [];
  async function walk(dir: string, prefix: string[]): Promise<void> {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    if (entries.some((e) => e.isFile() && e.name === 'index.json')) images.push(prefix.join('/'));
    for (const entry of entries) {
      if (entry.isDirectory() && entry.name !== 'blobs' && !entry.name.startsWith('.')) await walk(path.join(dir, entry.name), [...prefix, entry.name]);
    }
  }
  await walk(store, []);
  return images.sort();
}

/**
 * Remove the temp files a killed writer left in `store`'s temp folder: those whose writing process
 * (the pid their name starts with) is gone. Files of this process and of live ones (a build
 * running beside `serve`) are kept. Resolves to the number removed; a missing folder is 0.
 */
export async function sweepTempFiles(store: string): Promise<number> {
  const temp = path.join(store, TEMP_DIR);
  let removed = 0;
  for (const name of await readdir(temp).catch(() => [] as string[])) {
    const pid = Number(/^(\d+)-/.exec(name)?.[1]);
    if (!pid || pid === process.pid || processAlive(pid)) continue;
    await rm(path.join(temp, name), { force: true });
    removed++;
  }
  return removed;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // alive, someone else's
  }
}
