// `depot-ai build NAME --push HOST[/PREFIX]` without --keep: the image goes straight from the
// source into the registry (builder/stream-push.ts), nothing kept on disk but the download window
// (--window, DEPOT_WINDOW_BYTES) and, in memory, the upload's PATCH window (--upload-chunk,
// DEPOT_UPLOAD_CHUNK_BYTES).
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { PrefetchRule } from '../builder/prefetch.ts';
import { streamPush } from '../builder/stream-push.ts';
import type { Pusher } from '../client/push.ts';
import { FolderSource, type ModelSource } from '../sources/folder.ts';
import type { AttestSubject } from '../trust/attach.ts';
import { UsageError } from './args.ts';
import { formatBytes, progressReporter } from './progress.ts';

/**
 * Ranged Hub downloads in flight while streaming (DEPOT_HUB_CONNECTIONS, default 8): the Hub's
 * storage serves each connection at tens of MB/s, so several keep the pipeline fed.
 */
const HUB_CONNECTIONS = Number(process.env.DEPOT_HUB_CONNECTIONS) || 8;

export interface StreamCommand {
  name: string;
  sha?: string;
  tag: string;
  epoch: number;
  /** A local folder instead of the Hub. */
  from?: string;
  pusher: Pusher;
  repository: string;
  /** The content cache folder: pushed layers are remembered under it. */
  cache: string;
  /** Disk the Hub download window may use, in bytes. */
  windowBytes?: number;
  /** Files listed before the prefetch landmark (builder/prefetch.ts). */
  prefetch?: PrefetchRule;
  /** Aborted on SIGINT/SIGTERM (see interruptible): the push stops and cleans up. */
  signal?: AbortSignal;
}

/**
 * Streams one model into the registry and prints what happened; resolves with the summary row's
 * fields and what a provenance is about (the index and the layer's TOC).
 */
export async function streamCommand(command: StreamCommand): Promise<{ row: { image: string; digest: string; size: number; seconds: number; result: string }; subject: AttestSubject }> {
  const { name, sha, from } = command;
  if (!from && !sha) throw new UsageError(`${name} needs a --sha to fetch from Hugging Face`);
  const download = progressReporter(`download ${name}`);
  const compress = progressReporter(`compress ${name}`);
  const upload = progressReporter(`upload ${name}`);
  let uploaded = 0;
  let total = 0; // the model's size: the compressed layer is about as big, at most
  // @huggingface/hub loads in ~0.1 s: only for pushes from the Hub.
  const hub = from ? undefined : (await import('../sources/huggingface.ts')).HuggingFaceSource;
  const openSource = (): ModelSource => (hub ? new hub(name, sha!, { windowBytes: command.windowBytes, concurrency: HUB_CONNECTIONS, prefetch: command.prefetch, onDownload: download.update }) : new FolderSource(from!));
  try {
    const pushed = await streamPush({
      name,
      sha,
      tag: command.tag,
      epoch: command.epoch,
      prefetch: command.prefetch,
      openSource,
      pusher: command.pusher,
      repository: command.repository,
      signal: command.signal,
      stagingDir: tmpdir(),
      records: from ? undefined : path.join(command.cache, 'pushed-layers'),
      onProgress: (done, all) => compress.update(done, (total = all)),
      onUpload: (bytes) => upload.update((uploaded += bytes), Math.max(total, uploaded)),
      onStaging: (reason, dir, bytes) =>
        process.stderr.write(`depot-ai: ${reason}: staging the layer in ${dir} (needs up to ${formatBytes(bytes)} of disk, the most the layer can take) and pushing it whole\n`),
    });
    const rate = pushed.inputBytes / Math.max(pushed.seconds, 1e-3);
    console.log(
      [
        `pushed        ${pushed.reference} (${pushed.index.digest})`,
        `layer         ${formatBytes(pushed.layer.size)} (${pushed.layer.digest}), ${pushed.layerUpload}`,
        `uncompressed  ${formatBytes(pushed.layer.uncompressedSize)}`,
        `files         ${pushed.layer.files}${pushed.layer.prefetched ? ` (${pushed.layer.prefetched} before the prefetch landmark)` : ''}`,
        `time          ${pushed.seconds.toFixed(2)} s (${formatBytes(rate)}/s)`,
      ].join('\n'),
    );
    const how = { streamed: 'built, pushed', staged: 'built, pushed whole (staged)', present: 'pushed (layer already there)' }[pushed.layerUpload];
    return { row: { image: name.toLowerCase(), digest: pushed.index.digest, size: pushed.layer.size, seconds: pushed.seconds, result: how }, subject: { index: pushed.index, toc: pushed.layer.toc } };
  } finally {
    download.end();
    compress.end();
    upload.end();
  }
}

/** The push was stopped by a signal; `exitCode` is 128 + the signal's number, as a shell reports it. */
export class Interrupted extends Error {
  constructor(
    readonly signalName: 'SIGINT' | 'SIGTERM',
    readonly exitCode = signalName === 'SIGINT' ? 130 : 143,
  ) {
    super(`interrupted by ${signalName}`);
  }
}

/**
 * Runs `use` with a signal that the first SIGINT or SIGTERM (how CI cancels a job) aborts with an
 * Interrupted, after one line on stderr; a second signal exits at once with its code. Node's
 * default (exit on the spot) would leave the download spool on disk and the upload session open.
 */
export async function interruptible<T>(use: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSignal = (name: 'SIGINT' | 'SIGTERM') => {
    const reason = new Interrupted(name);
    if (controller.signal.aborted) process.exit(reason.exitCode);
    process.stderr.write(`depot-ai: ${name}: stopping, removing the download spool and cancelling the upload (again to exit at once)\n`);
    controller.abort(reason);
  };
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  try {
    const result = await use(controller.signal);
    controller.signal.throwIfAborted(); // a signal after the layer: the push finished, the exit status still says it came
    return result;
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
  }
}

/** `--window`/`--upload-chunk` values: a whole number of bytes, or with a K, M or G suffix (powers of 1024). */
export function parseByteSize(flag: string, text: string | undefined): number | undefined {
  if (text === undefined || text === '') return undefined;
  const match = /^(\d+)([KMG]i?B?)?$/i.exec(text.trim());
  if (!match || Number(match[1]) === 0) throw new UsageError(`${flag} must be a size in bytes such as 1073741824, 512M or 1G, not "${text}"`);
  const unit = { '': 1, K: 1 << 10, M: 1 << 20, G: 1 << 30 }[(match[2] ?? '').charAt(0).toUpperCase() as '' | 'K' | 'M' | 'G'];
  return Number(match[1]) * unit;
}
