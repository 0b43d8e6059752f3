// Build one image straight into a registry, with no copy on local disk: the layer writer's output
// is the body of a chunked upload (client/push.ts uploadBlob) as it is produced, then the two
// small configs, the platform manifests, the index, and the tag last. Disk and memory stay within
// the source's download window and two of the upload's PATCH windows (one being sent, one being
// filled), whatever the model's size.
// - A source error (an LFS file whose bytes do not match its sha256) fails the upload's iterator:
//   the session is DELETEd and nothing after the layer is pushed, so nothing is tagged.
// - A registry that drops the session after a cut PATCH gets the layer again from byte 0: the
//   source is opened afresh and the (reproducible) layer re-streamed.
// - A registry that refuses chunked uploads gets the layer staged on disk, then one whole PUT.
// - A layer this machine pushed before for the same name, sha and epoch (remembered in
//   `records`) is not streamed again when the registry still has it: its digest is only known
//   once built, so without that record every run streams the layer.
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rename, rm, statfs, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { ChunkedUploadRefused, type Pusher } from '../client/push.ts';
import { assembleImage } from '../image/image.ts';
import { layerSizeBound, writeLayer } from '../image/layer.ts';
import { sha256Digest, type Descriptor, type ImageIndex, type ImageManifest } from '../image/oci.ts';
import type { PrefetchRule } from './prefetch.ts';
import { SourceError, type ModelSource, type SourceFile } from '../sources/folder.ts';
import { BuildError, validateBuildInput, withProgress } from './build.ts';
import { ByteChannel } from './byte-channel.ts';

export interface StreamPushOptions {
  /** The Hugging Face repository id. */
  name: string;
  /** The revision; with `records`, what a remembered layer is keyed by. */
  sha?: string;
  tag: string;
  /** SOURCE_DATE_EPOCH, in seconds: every entry's mtime, and the configs' `created`. */
  epoch: number;
  /** Files listed before the prefetch landmark (builder/prefetch.ts); none: the default layer. */
  prefetch?: PrefetchRule;
  /** Opens the model's files afresh (called again when the layer must be re-streamed from byte 0). */
  openSource: () => ModelSource;
  pusher: Pusher;
  /** The repository on the pusher's registry, e.g. `org/model`. */
  repository: string;
  /** Where a layer is staged when the registry refuses chunked uploads (default: the OS temp folder). */
  stagingDir: string;
  /** Folder remembering the layers pushed (name, sha, epoch -> layer digest); omitted: none. */
  records?: string;
  /** Input bytes read by the layer writer so far, and the total. */
  onProgress?: (done: number, total: number) => void;
  /** Bytes the registry has confirmed. */
  onUpload?: (bytes: number) => void;
  /** Called once when the layer must be staged: why, where, and the most disk it needs in bytes. */
  onStaging?: (reason: string, dir: string, bytes: number) => void;
  /**
   * Stops the push (SIGINT, SIGTERM): the source is closed (downloads stopped, spool removed),
   * the upload session DELETEd, nothing after the layer pushed; streamPush rejects with the
   * signal's reason.
   */
  signal?: AbortSignal;
}

export interface StreamPushResult {
  /** `registry/repository:tag`. */
  reference: string;
  /** The index pushed (with its annotations: source, revision). */
  index: Descriptor;
  layer: Layer;
  /** How the layer got there: streamed chunked, staged and PUT whole, or already present. */
  layerUpload: 'streamed' | 'staged' | 'present';
  /** Input bytes read (0 when the layer was present). */
  inputBytes: number;
  seconds: number;
}

type Layer = Awaited<ReturnType<typeof writeLayer>>;

/** Streams the image of `openSource()` into `repository:tag`; throws BuildError (source) or RemoteError (registry). */
export async function streamPush(options: StreamPushOptions): Promise<StreamPushResult> {
  const started = performance.now();
  validateBuildInput(options.name, options.tag, options.sha);
  const { pusher, repository, signal } = options;
  signal?.throwIfAborted();
  // A prefetch rule is code, not a key: layers built with one are not remembered.
  const recordPath = options.records && options.sha && !options.prefetch && path.join(options.records, `${sha256Digest(`${options.name}\n${options.sha}\n${options.epoch}`).slice(7)}.json`);

  let current: ReturnType<Opener> | undefined; // the latest source: its total is the model's size once listed
  const opener: Opener = () => (current = withProgress(options.openSource(), options.onProgress));
  let layer = recordPath ? await rememberedLayer(recordPath, pusher, repository) : undefined;
  let layerUpload: StreamPushResult['layerUpload'] = 'present';
  try {
    if (!layer) {
      try {
        layer = await streamLayer(opener, options);
        layerUpload = 'streamed';
      } catch (error) {
        if (!(error instanceof ChunkedUploadRefused)) throw error;
        layer = await stageAndPut(opener, options, error.message, layerSizeBound(current?.files ?? []));
        layerUpload = 'staged';
      }
      if (recordPath) await remember(recordPath, layer);
    }
  } catch (error) {
    signal?.throwIfAborted(); // whatever the interruption broke on the way
    if (error instanceof SourceError) throw new BuildError(error.message);
    throw error;
  }
  signal?.throwIfAborted();

  const image = assembleImage(layer, { name: options.name, sha: options.sha, created: options.epoch });
  const blobs = new Map(image.blobs.map((bytes) => [sha256Digest(bytes), bytes]));
  const index = JSON.parse(blobs.get(image.index.digest)!.toString('utf8')) as ImageIndex;
  const manifests = index.manifests.map((descriptor) => ({ descriptor, bytes: blobs.get(descriptor.digest)! }));
  for (const { bytes } of manifests) {
    const config = (JSON.parse(bytes.toString('utf8')) as ImageManifest).config;
    const configBytes = blobs.get(config.digest)!;
    if (!(await pusher.hasBlob(repository, config, configBytes[configBytes.length - 1]))) await pusher.uploadWhole(repository, () => new Uint8Array(configBytes), config);
  }
  await pusher.putImage(repository, await pusher.imageTags(repository, options.tag, image.index), manifests, { descriptor: image.index, bytes: blobs.get(image.index.digest)! });
  return {
    reference: `${pusher.target.registry}/${repository}:${options.tag}`,
    index: image.index,
    layer,
    layerUpload,
    inputBytes: current?.total ?? 0,
    seconds: (performance.now() - started) / 1000,
  };
}

type Opener = () => ModelSource & { total: number; files: SourceFile[] };

/** The layer as `build` writes it for the same epoch and prefetch rule (so the digests agree). */
const layerOptions = (options: StreamPushOptions) => ({ mtime: options.epoch, prefetch: options.prefetch });

/** The layer written into a chunked upload; re-streamed from a fresh source if the session is lost. */
async function streamLayer(opener: Opener, options: StreamPushOptions): Promise<Layer> {
  let written: Promise<Layer> | undefined;
  const start = () => {
    // The writer may run one upload window ahead, so compressing goes on while a PATCH is sent.
    const channel = new ByteChannel(options.pusher.uploadChunk);
    const source = opener();
    const release = whenAborted(options.signal, () => {
      channel.fail(options.signal!.reason); // the upload's reader throws: its session is DELETEd
      void source.close?.();
    });
    const run = writeLayer(source, channel, layerOptions(options)).then(
      (layer) => (channel.end(), layer),
      (error) => {
        channel.fail(error);
        throw error;
      },
    );
    void run.finally(release).catch(() => {});
    run.catch(() => {}); // awaited below; a failure also reaches the upload through the channel
    written = run;
    return channel;
  };
  try {
    // The writer hashes the layer as it emits it; the upload need not hash it again.
    const hashed = () => written!.then(({ digest, size }) => ({ digest, size }));
    await options.pusher.uploadBlob(options.repository, start(), { onProgress: options.onUpload, reopen: start, hashed, signal: options.signal });
    return await written!;
  } catch (error) {
    // The writer's own error (a bad LFS file) says more than "the upload stopped reading".
    const writerError = await written?.then(() => undefined, (e: unknown) => e);
    throw writerError instanceof SourceError ? writerError : error;
  }
}

/**
 * The layer written to a file under `stagingDir`, then PUT whole; the file is removed either way.
 * Refused up front (BuildError) when the folder has less free space than `layerBytes`, an upper
 * bound of the layer's size (layerSizeBound).
 */
async function stageAndPut(opener: Opener, options: StreamPushOptions, reason: string, layerBytes: number): Promise<Layer> {
  await mkdir(options.stagingDir, { recursive: true });
  const { bavail, bsize } = await statfs(options.stagingDir);
  if (bavail * bsize < layerBytes) {
    const mb = (bytes: number) => `${Math.ceil(bytes / 1e6)} MB`;
    throw new BuildError(`${reason}, and staging the layer needs up to ${mb(layerBytes)} in ${options.stagingDir}, which has ${mb(bavail * bsize)} free: set TMPDIR to a bigger disk`);
  }
  const dir = await mkdtemp(path.join(options.stagingDir, 'depot-stage-'));
  options.onStaging?.(reason, dir, layerBytes);
  try {
    const file = path.join(dir, 'layer');
    const handle = await open(file, 'wx');
    let layer: Layer;
    const source = opener();
    const release = whenAborted(options.signal, () => void source.close?.());
    try {
      layer = await writeLayer(source, { write: (bytes) => handle.appendFile(bytes) }, layerOptions(options));
      await handle.sync();
    } finally {
      release();
      await handle.close();
    }
    options.signal?.throwIfAborted();
    await options.pusher.uploadWhole(options.repository, () => Readable.toWeb(createReadStream(file, { highWaterMark: 1 << 20 })) as ReadableStream, layer);
    return layer;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs `stop` once if `signal` aborts; the returned function removes the listener. */
function whenAborted(signal: AbortSignal | undefined, stop: () => void): () => void {
  if (signal?.aborted) stop();
  signal?.addEventListener('abort', stop, { once: true });
  return () => signal?.removeEventListener('abort', stop);
}

/** A layer remembered for this name, sha and epoch that the registry still holds, or undefined. */
async function rememberedLayer(file: string, pusher: Pusher, repository: string): Promise<Layer | undefined> {
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  let layer: Layer;
  try {
    layer = JSON.parse(text) as Layer;
  } catch {
    return undefined;
  }
  if (typeof layer.digest !== 'string' || typeof layer.size !== 'number') return undefined;
  return (await pusher.hasBlob(repository, layer)) ? layer : undefined;
}

/** Written whole then renamed, so a record is never half there. */
async function remember(file: string, layer: Layer): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temp = `${file}.${randomUUID()}.tmp`;
  await writeFile(temp, JSON.stringify(layer));
  await rename(temp, file);
}
