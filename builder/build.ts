// Build one image into the store: source -> eStargz layer -> configs, manifests, index -> tag.
// Nothing becomes visible until it is complete: the layer streams into a temp file and is renamed
// into the layout once written, and the tag is the very last write.
import { open, rm } from 'node:fs/promises';
import { imageName, nameProblem, shaProblem, tagProblem } from '../models/catalog.ts';
import { NO_PREFETCH_LANDMARK, PREFETCH_LANDMARK, type ByteSink } from '../image/estargz.ts';
import { TOC_TAR_NAME } from '../image/footer.ts';
import { assembleImage, type ImageBlobs } from '../image/image.ts';
import { writeLayer } from '../image/layer.ts';
import { ImageLayout } from '../image/layout.ts';
import { sha256Digest } from '../image/oci.ts';
import type { PrefetchRule } from './prefetch.ts';
import { SourceError, type ModelSource, type SourceFile } from '../sources/folder.ts';

export class BuildError extends Error {}

export interface BuildOptions {
  /** The Hugging Face repository id. */
  name: string;
  source: ModelSource;
  store: string;
  /** The moving tag (the catalog's `tag`, default latest). */
  tag: string;
  /** The Hub commit: the image is also tagged with it, and that revision tag never moves. */
  sha?: string;
  /** SOURCE_DATE_EPOCH, in seconds. */
  epoch?: number;
  chunkSize?: number;
  level?: number;
  /** Files to list before the eStargz prefetch landmark (builder/prefetch.ts); none: the default layer. */
  prefetch?: PrefetchRule;
  /** Called with the bytes of input read so far and the total. */
  onProgress?: (done: number, total: number) => void;
}

export interface BuildResult {
  image: string;
  tag: string;
  indexDigest: string;
  layerDigest: string;
  compressedSize: number;
  uncompressedSize: number;
  files: number;
  /** Files before the prefetch landmark (0: the default layer). */
  prefetched: number;
  inputBytes: number;
  seconds: number;
}

/**
 * Names the eStargz format gives a meaning at the top of a layer: the TOC and the two landmarks
 * (the stargz snapshotter hides the landmarks at the root only, so deeper copies are fine).
 */
const RESERVED = new Set([NO_PREFETCH_LANDMARK, PREFETCH_LANDMARK, TOC_TAR_NAME]);
/** OCI layers mark deletions with entries named `.wh.<name>` (and `.wh..wh..opq`): no file may be named so. */
const WHITEOUT_PREFIX = '.wh.';

export function validateBuildInput(name: string, tag: string, sha?: string): void {
  const problem = nameProblem(name) ?? tagProblem(tag) ?? (sha === undefined ? undefined : shaProblem(sha));
  if (problem) throw new BuildError(problem);
}

export async function buildImage(options: BuildOptions): Promise<BuildResult> {
  const started = performance.now();
  validateBuildInput(options.name, options.tag, options.sha);
  const layout = new ImageLayout(options.store, imageName(options.name));

  const temp = await layout.tempBlobPath();
  const handle = await open(temp, 'wx');
  const flusher = new BackgroundFlush(handle);
  let made;
  try {
    made = await makeImage(options, { write: (bytes) => flusher.wrote(writeAll(handle, bytes), bytes.length) });
    await flusher.done();
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  const { layer, image, inputBytes } = made;

  // The revision tag (the Hub commit sha) never moves: refuse before anything enters the layout.
  const fixed = options.sha ? await layout.resolveTag(options.sha) : undefined;
  if (fixed && fixed.digest !== image.index.digest) {
    await rm(temp, { force: true });
    throw new BuildError(`${layout.image}:${options.sha} is a revision tag and already points at ${fixed.digest}; it never moves (this build made ${image.index.digest})`);
  }

  // Blobs this build adds to the layout: on a failure (a full disk) they are removed again, so
  // nothing unreferenced stays behind.
  const added: string[] = [];
  try {
    if ((await layout.blobSize(layer.digest)) === undefined) added.push(layer.digest);
    await layout.commitBlob(temp, layer.digest);
    for (const blob of image.blobs) {
      const digest = sha256Digest(blob);
      if ((await layout.blobSize(digest)) === undefined) added.push(digest);
      await layout.writeBlob(blob);
    }
    if (options.sha && !fixed) await layout.setTag(options.sha, image.index);
    await layout.setTag(options.tag, image.index);
  } catch (error) {
    await layout.discard(added).catch(() => {}); // the write's own error is the one to report
    throw error;
  }

  return {
    image: layout.image,
    tag: options.tag,
    indexDigest: image.index.digest,
    layerDigest: layer.digest,
    compressedSize: layer.size,
    uncompressedSize: layer.uncompressedSize,
    files: layer.files,
    prefetched: layer.prefetched,
    inputBytes,
    seconds: (performance.now() - started) / 1000,
  };
}

/**
 * What a build makes, wherever its bytes go: the eStargz layer streamed into `sink` and the
 * configs, manifests and index around it (in memory). `depot-ai verify` passes a sink that
 * discards, to learn the digests a build at a revision gives without storing anything.
 * Throws BuildError for a bad source or a revision that is not a Hub commit (it becomes the label).
 */
export async function makeImage(options: Omit<BuildOptions, 'store' | 'tag'>, sink: ByteSink): Promise<{ layer: Awaited<ReturnType<typeof writeLayer>>; image: ImageBlobs; inputBytes: number }> {
  const bad = options.sha === undefined ? undefined : shaProblem(options.sha);
  if (bad) throw new BuildError(bad);
  const epoch = options.epoch ?? 0;
  const source = withProgress(options.source, options.onProgress);
  try {
    const layer = await writeLayer(source, sink, {
      mtime: epoch,
      chunkSize: options.chunkSize,
      level: options.level,
      prefetch: options.prefetch,
    });
    return { layer, image: assembleImage(layer, { name: options.name, sha: options.sha, created: epoch }), inputBytes: source.total };
  } catch (error) {
    if (error instanceof SourceError) throw new BuildError(error.message);
    throw error;
  }
}

/** Bytes written between two background flushes. */
const FLUSH_EVERY = 32 * 1024 * 1024;

/**
 * The layer must be on disk before it is renamed into the layout (fsync), and one fsync of a
 * whole layer at the end costs ~6% of a build. A `datasync` every FLUSH_EVERY bytes, one at a
 * time on libuv's pool, writes the file back while the next chunks compress: the final fsync has
 * only the tail left.
 */
class BackgroundFlush {
  private since = 0;
  private flushing: Promise<void> | undefined;
  /** A flush's error: Linux reports a writeback error to one fsync only, so it is kept to throw. */
  private failed: unknown;

  constructor(private handle: import('node:fs/promises').FileHandle) {}

  /** Counts `length` bytes once `write` is done; resolves when it is. */
  async wrote(write: Promise<void>, length: number): Promise<void> {
    await write;
    this.since += length;
    if (this.since < FLUSH_EVERY || this.flushing) return;
    this.since = 0;
    this.flushing = this.handle.datasync().then(
      () => (this.flushing = undefined),
      (error: unknown) => {
        this.failed ??= error;
        this.flushing = undefined;
      },
    );
  }

  /** Waits for the flush in flight; throws the first flush's error. */
  async done(): Promise<void> {
    await this.flushing;
    if (this.failed !== undefined) throw this.failed;
  }
}

async function writeAll(handle: import('node:fs/promises').FileHandle, bytes: Buffer): Promise<void> {
  for (let offset = 0; offset < bytes.length; ) {
    const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset);
    offset += bytesWritten;
  }
}

/** Wraps a source to check reserved names and to count bytes as the layer writer reads them. */
export function withProgress(source: ModelSource, onProgress?: (done: number, total: number) => void): ModelSource & { total: number; files: SourceFile[] } {
  let done = 0;
  const wrapped = {
    total: 0,
    files: [] as SourceFile[],
    async list(): Promise<SourceFile[]> {
      const files = await source.list();
      const reserved = files.find((f) => RESERVED.has(f.path));
      if (reserved) throw new SourceError(`${reserved.path} is reserved by the eStargz format at the top of a layer; rename it or move it into a folder`);
      const whiteout = files.find((f) => f.path.split('/').some((part) => part.startsWith(WHITEOUT_PREFIX)));
      if (whiteout) throw new SourceError(`${whiteout.path}: a name starting with "${WHITEOUT_PREFIX}" is a whiteout in an OCI layer (image-spec, layer.md): every client would delete a file instead of copying this one; rename it`);
      wrapped.files = files;
      wrapped.total = files.reduce((sum, f) => sum + f.size, 0);
      onProgress?.(0, wrapped.total);
      return files;
    },
    async *chunks(file: SourceFile, chunkSize: number): AsyncIterable<Buffer> {
      for await (const chunk of source.chunks(file, chunkSize)) {
        done += chunk.length;
        onProgress?.(done, wrapped.total);
        yield chunk;
      }
    },
    close: () => source.close?.() ?? Promise.resolve(),
  };
  return wrapped;
}
