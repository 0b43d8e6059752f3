// depot-ai build NAME [NAME...] | --all: catalog entries fetched from Hugging Face at their pinned
// sha (or one model from a local folder with --from), built into the store or, with --push,
// streamed into any OCI registry (with --keep: built into the store, then pushed from it). One
// failed model does not stop the others; a summary table ends the run and the exit status is
// non-zero if any failed.
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DEFAULT_CATALOG, DEFAULT_TAG, loadCatalog, type ModelEntry } from '../models/catalog.ts';
import { buildImage, type BuildResult } from '../builder/build.ts';
import { prefetchRule, type PrefetchRule } from '../builder/prefetch.ts';
import { ContentCache, DEFAULT_CACHE } from '../sources/content-cache.ts';
import { DEFAULT_STORE, ImageLayout } from '../image/layout.ts';
import { MAX_MTIME } from '../image/tar.ts';
import { MIN_PATCH_BYTES, parsePushTarget, Pusher, targetRepository, type PushResult } from '../client/push.ts';
import { BUNDLE_ARTIFACT_TYPE } from '../trust/artifact.ts';
import type { AttestSubject } from '../trust/attach.ts';
import { FolderSource, type ModelSource } from '../sources/folder.ts';
import { parseCommandArgs, UsageError } from './args.ts';
import { formatBytes, progressReporter } from './progress.ts';
import { formatTable } from './table.ts';
import { interruptible, Interrupted, parseByteSize, streamCommand } from './stream-push.ts';

interface Row {
  image: string;
  digest?: string;
  size?: number;
  seconds: number;
  result: string;
  failed?: boolean;
}

export async function buildCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, {
    from: { type: 'string' },
    store: { type: 'string', default: process.env.DEPOT_STORE ?? DEFAULT_STORE },
    cache: { type: 'string', default: process.env.DEPOT_CACHE ?? DEFAULT_CACHE },
    tag: { type: 'string' },
    sha: { type: 'string' },
    catalog: { type: 'string', default: DEFAULT_CATALOG },
    all: { type: 'boolean', default: false },
    push: { type: 'string' },
    insecure: { type: 'boolean', default: false },
    prefetch: { type: 'string', multiple: true },

    attest: { type: 'boolean', default: false },
    'signing-key': { type: 'string' },
    keep: { type: 'boolean', default: false },
    window: { type: 'string', default: process.env.DEPOT_WINDOW_BYTES },
    'upload-chunk': { type: 'string', default: process.env.DEPOT_UPLOAD_CHUNK_BYTES },
  });
  if (values['signing-key'] && !values.attest) throw new UsageError('--signing-key signs the provenance: use it with --attest');
  if (values.all && positionals.length > 0) throw new UsageError('build takes NAMEs or --all, not both');
  if (!values.all && positionals.length === 0) throw new UsageError('build needs a NAME (or --all): depot-ai build NAME [NAME...] [--from DIR] [--push HOST[/PREFIX]]');
  if (values.from && (values.all || positionals.length > 1)) throw new UsageError('--from builds one model: depot-ai build NAME --from DIR');
  // The provenance names the Hub repository and commit as the source of every file: a local folder is not that.
  if (values.from && values.attest) throw new UsageError('--attest signs that the files come from the Hub at the commit: build without --from to attest');
  // A revision tag never moves: set from a local folder it would squat the Hub commit's own image forever.
  if (values.from && values.push && values.sha) throw new UsageError('--sha with --from and --push: a local folder is not the Hub commit; revision tags come from Hub builds (build without --from, or into the store without --push)');
  if ((values.tag || values.sha) && (values.all || positionals.length > 1)) throw new UsageError('--tag and --sha apply to one model');

  const catalog = values.all || !values.from || existsSync(values.catalog) ? await loadCatalog(values.catalog) : [];
  const names = values.all ? catalog.map((m) => m.name) : positionals;
  const target = values.push ? parsePushTarget(values.push) : undefined;
  const windowBytes = parseByteSize('--window', values.window);
  const chunkSize = parseByteSize('--upload-chunk', values['upload-chunk']);
  // Each PATCH is a request: tiny ones turn a push into millions of them, for no memory worth saving.
  if (chunkSize !== undefined && chunkSize < MIN_PATCH_BYTES) throw new UsageError(`--upload-chunk (DEPOT_UPLOAD_CHUNK_BYTES) must be at least ${MIN_PATCH_BYTES / 1024}K, not ${values['upload-chunk']}`);
  const pusher = target && (await Pusher.connect(target, { insecure: values.insecure, chunkSize, onNotice: (line) => process.stderr.write(`depot-ai: ${line}\n`) }));
  const cache = new ContentCache(values.cache);
  const epoch = sourceDateEpoch();
  const prefetch = values.prefetch?.length ? prefetchOption(values.prefetch) : undefined;

  const signingKey = values['signing-key'] ? await readSigningKey(values['signing-key']) : undefined;

  const rows: Row[] = [];
  for (const name of names) {
    const started = performance.now();
    const listed = catalog.find((m) => m.name === name || m.image === name.toLowerCase());
    const row = await buildOne(name, listed).catch((error: Error) => {
      if (error instanceof Interrupted) return error; // said once already, by interruptible
      if (process.env.DEPOT_DEBUG) console.error(error);
      const message = (error as NodeJS.ErrnoException).code === 'ENOSPC' ? 'the disk is full' : error.message;
      process.stderr.write(`depot-ai: ${name}: ${message}\n`);
      return { image: name.toLowerCase(), seconds: 0, result: `failed: ${message}`, failed: true } as Row;
    });
    if (row instanceof Interrupted) return row.exitCode;
    row.seconds = (performance.now() - started) / 1000;
    rows.push(row);
  }
  if (rows.length > 1 || pusher) {
    const table = rows.map((r) => [r.image, r.digest?.slice(0, 19) ?? '-', r.size === undefined ? '-' : formatBytes(r.size), `${r.seconds.toFixed(1)} s`, r.result]);
    console.log(formatTable(['IMAGE', 'DIGEST', 'SIZE', 'TIME', 'RESULT'], table));
  }
  return rows.some((r) => r.failed) ? 1 : 0;

  async function buildOne(name: string, listed: ModelEntry | undefined): Promise<Row> {
    if (!listed && !values.from) throw new UsageError(`"${name}" is not in ${values.catalog}; without a catalog entry, build needs --from DIR`);
    // A pushed local folder gets no revision label (so no revision tag): the catalog's sha is not its source.
    const sha = values.from && pusher ? undefined : (values.sha ?? listed?.sha);
    const tag = values.tag ?? listed?.tag ?? DEFAULT_TAG;
    const layout = new ImageLayout(values.store, name.toLowerCase());
    const repository = target && targetRepository(target, layout.image);

    // The registry's image says its revision but not its epoch or prefetch rule: only a build with
    // the defaults may take it as current. Otherwise it is rebuilt (and the revision tag, which
    // never moves, refuses an image other than its own).
    const defaults = epoch === 0 && !prefetch;
    if (pusher && repository && !values.from && !defaults) process.stderr.write(`depot-ai: ${name}: not checking whether ${repository}:${tag} is up to date: SOURCE_DATE_EPOCH or --prefetch change the image; building it\n`);
    if (pusher && repository && !values.from && defaults) {
      const remote = await pusher.remoteDigest(repository, tag);
      const local = await layout.resolveTag(tag);
      const fixed = remote && sha && (await pusher.remoteDigest(repository, sha));
      const current = remote && remote.revision === sha && fixed && fixed.digest === remote.digest && (!local || local.digest === remote.digest);
      // An image published before it could be attested is rebuilt (to the same digest) and attested.
      const attested = !values.attest || (current && (await pusher.client.referrers(repository, remote.digest, { artifactType: BUNDLE_ARTIFACT_TYPE })).length > 0);
      if (current && attested) {
        console.log(`${target!.registry}/${repository}:${tag} is up to date (revision ${sha}, ${remote.digest})`);
        return { image: layout.image, digest: remote.digest, seconds: 0, result: 'up to date' };
      }
    }

    const startedOn = new Date();
    /** Signs the provenance of `subject` into `into` (and the registry when pushed): the summary's suffix. */
    const attest = async (subject: () => Promise<AttestSubject>, into: ImageLayout, push?: { pusher: Pusher; repository: string }) => {
      if (!values.attest) return '';
      if (!sha) throw new UsageError(`${name}: --attest needs the Hub commit (--sha or the catalog's sha)`);
      const imageName = push ? `${target!.registry}/${push.repository}` : layout.image;
      const about = await subject();
      // Signing (sigstore) loads in ~0.1 s: only for builds that attest.
      const { attestImage } = await import('../trust/attach.ts');
      const { artifact, where } = await attestImage(into, about, { entry: { name, sha, tag }, imageName, signingKey, startedOn, push });
      console.log(`attested ${imageName}@${about.index.digest}: ${artifact.digest} (${where === 'tag' ? 'referrers tag' : where})`);
      return ', attested';
    };
    if (pusher && repository && !values.keep) {
      if (values.attest && !sha) throw new UsageError(`${name}: --attest needs the Hub commit (--sha or the catalog's sha)`);
      const streamed = await interruptible((signal) => streamCommand({ name, sha, tag, epoch, prefetch, from: values.from, pusher, repository, cache: values.cache, windowBytes, signal }));
      // Nothing is kept: the artifact is assembled in a scratch layout, pushed, and dropped.
      const attested = values.attest ? await withScratchLayout(layout.image, (scratch) => attest(async () => streamed.subject, scratch, { pusher, repository })) : '';
      return { ...streamed.row, result: streamed.row.result + attested };
    }
    const result = await build(name, sha, tag, layout);
    const fromStore = async () => (await import('../trust/attach.ts')).layoutSubject(layout, tag);
    if (!pusher) return { image: layout.image, digest: result.indexDigest, size: result.compressedSize, seconds: 0, result: `built${await attest(fromStore, layout)}` };
    const upload = progressReporter(`upload ${name}`);
    let pushed: PushResult;
    try {
      pushed = await pusher.push(layout, tag, upload.update);
    } finally {
      upload.end();
    }
    const how = pushed.upToDate ? 'already there' : `${pushed.blobsUploaded} uploaded, ${pushed.blobsSkipped} present, ${pushed.blobsMounted} mounted`;
    console.log(`pushed ${pushed.reference} (${pushed.digest}): ${how}`);
    const attested = await attest(fromStore, layout, { pusher, repository: repository! });
    return { image: layout.image, digest: result.indexDigest, size: result.compressedSize, seconds: 0, result: `${pushed.upToDate ? 'built, push up to date' : 'built, pushed'}${attested}` };
  }

  async function build(name: string, sha: string | undefined, tag: string, layout: ImageLayout): Promise<BuildResult> {
    const download = progressReporter(`download ${name}`);
    let source: ModelSource;
    if (values.from) source = new FolderSource(values.from);
    else if (!sha) throw new UsageError(`${name} needs a --sha to fetch from Hugging Face`);
    else {
      // @huggingface/hub loads in ~0.1 s: only for builds from the Hub.
      const { HuggingFaceSource } = await import('../sources/huggingface.ts');
      source = new HuggingFaceSource(name, sha, { cache, onDownload: download.update });
    }
    const compress = progressReporter(`compress ${name}`);
    try {
      const result = await buildImage({ name, source, store: layout.store, tag, sha, epoch, prefetch, onProgress: compress.update });
      printResult(result);
      return result;
    } finally {
      download.end();
      compress.end();
    }
  }
}

function printResult(result: BuildResult): void {
  const rate = result.inputBytes / Math.max(result.seconds, 1e-3);
  console.log(
    [
      `image         ${result.image}:${result.tag}`,
      `index         ${result.indexDigest}`,
      `layer         ${formatBytes(result.compressedSize)} (${result.layerDigest})`,
      `uncompressed  ${formatBytes(result.uncompressedSize)}`,
      `files         ${result.files}${result.prefetched ? ` (${result.prefetched} before the prefetch landmark)` : ''}`,
      `time          ${result.seconds.toFixed(2)} s (${formatBytes(rate)}/s)`,
    ].join('\n'),
  );
}

function prefetchOption(values: string[]): PrefetchRule {
  try {
    return prefetchRule(values);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** Runs `use` with an empty layout for `image` in a fresh temp folder, removed afterwards. */
async function withScratchLayout<T>(image: string, use: (layout: ImageLayout) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'depot-attest-'));
  try {
    return await use(new ImageLayout(dir, image));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function readSigningKey(file: string): Promise<KeyObject> {
  try {
    return createPrivateKey(await readFile(file, 'utf8'));
  } catch (error) {
    throw new UsageError(`--signing-key ${file}: not a readable PEM private key (${(error as Error).message.split('\n')[0]})`);
  }
}

/**
 * SOURCE_DATE_EPOCH in seconds (0 when unset): every entry's mtime and the configs' `created`.
 * At most MAX_MTIME, the largest a tar header holds (the RFC 3339 dates reach further).
 */
export function sourceDateEpoch(): number {
  const raw = process.env.SOURCE_DATE_EPOCH;
  if (raw === undefined || raw === '') return 0;
  if (!/^\d+$/.test(raw)) throw new UsageError(`SOURCE_DATE_EPOCH must be a whole number of seconds, not "${raw}"`);
  if (Number(raw) > MAX_MTIME) {
    throw new UsageError(`SOURCE_DATE_EPOCH must be at most ${MAX_MTIME} (${new Date(MAX_MTIME * 1000).toISOString().replace('.000Z', 'Z')}, the latest mtime a tar header holds), not ${raw}`);
  }
  return Number(raw);
}
