// Build one image into the store: source -> eStargz layer -> configs, manifests, index -> tag.
// Nothing becomes visible until it is complete: the layer streams into a temp file and is renamed
// into the layout once written, and the tag is the very last write.
import { open, rm } from 'node:fs/promises';
import { imageName, nameProblem, shaProblem, tagProblem } from '../models/catalog.ts';
import { NO_PREFETCH_LANDMARK, PREFETCH_LANDMARK, TOC_TAR_NAME } from '../image/estargz.ts';
import { assembleImage } from '../image/image.ts';
import { writeLayer } from '../image/layer.ts';
import { ImageLayout } from '../image/layout.ts';
import { sha256Digest } from '../image/oci.ts';
import { SourceError, type ModelSource, type SourceFile } from '../sources/folder.ts';

export class BuildError extends Error {}

export interface BuildOptions {
  /** The Hugging Face repository id. */
  name: string;
  source: ModelSource;
  store: string;
  tag: string;
  sha?: string;
  /** SOURCE_DATE_EPOCH, in seconds. */
  epoch?: number;
  chunkSize?: number;
  level?: number;
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
  inputBytes: number;
  seconds: number;
}

/**
 * Names the eStargz format gives a meaning at the top of a layer: the TOC and the two landmarks
 * (the stargz snapshotter hides the landmarks at the root only, so deeper copies are fine).
 */
const RESERVED = new Set([NO_PREFETCH_LANDMARK, PREFETCH_LANDMARK, TOC_TAR_NAME]);

export function validateBuildInput(name: string, tag: string, sha?: string): void {
  const problem = nameProblem(name) ?? tagProblem(tag) ?? (sha === undefined ? undefined : shaProblem(sha));
  if (problem) throw new BuildError(problem);
}

export async function buildImage(options: BuildOptions): Promise<BuildResult> {
  const started = performance.now();
  validateBuildInput(options.name, options.tag, options.sha);
  const epoch = options.epoch ?? 0;
  const layout = new ImageLayout(options.store, imageName(options.name));
  const source = withProgress(options.source, options.onProgress);

  const temp = await layout.tempBlobPath();
  const handle = await open(temp, 'wx');
  let layer;
  try {
    layer = await writeLayer(source, { write: (bytes) => writeAll(handle, bytes) }, {
      mtime: epoch,
      chunkSize: options.chunkSize,
      level: options.level,
    });
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(temp, { force: true });
    if (error instanceof SourceError) throw new BuildError(error.message);
    throw error;
  }
  await handle.close();

  // Blobs this build adds to the layout: on a failure (a full disk) they are removed again, so
  // nothing unreferenced stays behind.
  const added: string[] = [];
  const image = assembleImage(layer, { name: options.name, sha: options.sha, created: epoch });
  try {
    if ((await layout.blobSize(layer.digest)) === undefined) added.push(layer.digest);
    await layout.commitBlob(temp, layer.digest);
    for (const blob of image.blobs) {
      const digest = sha256Digest(blob);
      if ((await layout.blobSize(digest)) === undefined) added.push(digest);
      await layout.writeBlob(blob);
    }
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
    inputBytes: source.total,
    seconds: (performance.now() - started) / 1000,
  };
}

async function writeAll(handle: import('node:fs/promises').FileHandle, bytes: Buffer): Promise<void> {
  for (let offset = 0; offset < bytes.length; ) {
    const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset);
    offset += bytesWritten;
  }
}

/** Wraps a source to check reserved names and to count bytes as the layer writer reads them. */
export function withProgress(source: ModelSource, onProgress?: (done: number, total: number) => void): ModelSource & { total: number } {
  let done = 0;
  const wrapped = {
    total: 0,
    async list(): Promise<SourceFile[]> {
      const files = await source.list();
      const reserved = files.find((f) => RESERVED.has(f.path));
      if (reserved) throw new SourceError(`${reserved.path} is reserved by the eStargz format at the top of a layer; rename it or move it into a folder`);
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
