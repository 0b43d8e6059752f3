// `npm run worker`: the registry Worker (registry/worker.ts) in workerd through Miniflare 3, with R2
// simulated on disk, configured from wrangler.toml like a deployment. Also the test and bench entry.
//   PORT            where to listen on 127.0.0.1 (default 8787; 0 picks a free port)
//   DEPOT_R2_DIR    the simulated bucket's folder (default .depot/r2)
//   DEPOT_UPSTREAM  registry to pull through from (default none: serve what the bucket holds)
//   DEPOT_STORE     optional: a store folder copied into the bucket first (scripts/worker-load.ts)
import { build } from 'esbuild';
import { Miniflare } from 'miniflare';
import type { Readable } from 'node:stream';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parse } from 'smol-toml';
import type { R2Bucket } from '../registry/r2-store.ts';
import { configProblem } from '../registry/worker.ts';
import { loadStore } from './worker-load.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

interface WranglerConfig {
  main: string;
  compatibility_date: string;
  compatibility_flags?: string[];
  vars?: Record<string, string>;
  r2_buckets: { binding: string }[];
  durable_objects?: { bindings: { name: string; class_name: string }[] };
}

export interface WorkerOptions {
  port?: number;
  /** Folder of the simulated R2 bucket. */
  r2Dir: string;
  /** Overrides wrangler.toml's vars (UPSTREAM, PUBLIC_BLOB_URL) and sets secrets (UPSTREAM_USER...). */
  bindings?: Record<string, string>;
}

export interface RunningWorker {
  /** `http://127.0.0.1:port` */
  url: string;
  /** The bucket, from Node (to fill or inspect it). */
  bucket: R2Bucket;
  close(): Promise<void>;
}

/** The Worker bundled as one ES module, as wrangler would (node:* left to workerd's nodejs_compat). */
export async function bundleWorker(entry: string): Promise<string> {
  const result = await build({
    entryPoints: [path.join(ROOT, entry)],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    conditions: ['workerd', 'worker', 'browser'],
    mainFields: ['module', 'main'],
    external: ['node:*'],
    logLevel: 'silent',
  });
  return result.outputFiles[0].text;
}

const wranglerConfig = async () => parse(await readFile(path.join(ROOT, 'wrangler.toml'), 'utf8')) as unknown as WranglerConfig;

/** How much of workerd's stderr a start-up failure quotes. */
const STDERR_TAIL = 4096;

/**
 * Start the Worker in workerd; resolves once it accepts requests. workerd's own output goes to our
 * stderr; when it fails to start (a module the bundle needs that workerd lacks, a throw at the top
 * level), the error thrown quotes the end of what workerd said, not only Miniflare's "failed to start".
 */
export async function startWorker(options: WorkerOptions): Promise<RunningWorker> {
  const config = await wranglerConfig();
  const bucketBinding = config.r2_buckets[0].binding;
  let said = '';
  const relay = (stream: Readable, to: NodeJS.WriteStream) =>
    stream.on('data', (chunk: Buffer) => {
      to.write(chunk);
      if (to === process.stderr) said = (said + chunk.toString('utf8')).slice(-STDERR_TAIL);
    });
  const mf = new Miniflare({
    host: '127.0.0.1',
    port: options.port ?? 8787,
    modules: true,
    script: await bundleWorker(config.main),
    compatibilityDate: config.compatibility_date,
    compatibilityFlags: config.compatibility_flags ?? [],
    bindings: { ...config.vars, ...options.bindings },
    r2Buckets: [bucketBinding],
    r2Persist: options.r2Dir,
    durableObjects: Object.fromEntries((config.durable_objects?.bindings ?? []).map((b) => [b.name, b.class_name])),
    cf: false, // offline: no fetch of Cloudflare's request.cf sample
    handleRuntimeStdio: (stdout, stderr) => (relay(stdout, process.stdout), relay(stderr, process.stderr)),
  });
  let url: string;
  try {
    url = (await mf.ready).origin;
  } catch (error) {
    await mf.dispose().catch(() => {});
    const why = said.trim().split('\n').filter(Boolean).slice(-3).join(' | ');
    throw new Error(`workerd could not start the Worker${why ? `: ${why}` : ''} (${(error as Error).message})`, { cause: error });
  }
  const bucket = (await mf.getR2Bucket(bucketBinding)) as unknown as R2Bucket;
  return { url, bucket, close: () => mf.dispose() };
}

async function main(): Promise<void> {
  const r2Dir = path.resolve(process.env.DEPOT_R2_DIR || '.depot/r2');
  const bindings = { UPSTREAM: process.env.DEPOT_UPSTREAM ?? '' };
  // Refused here rather than answered with a 500 on every request, as the deployed Worker must.
  const problem = configProblem({ ...(await wranglerConfig()).vars, ...bindings });
  if (problem) throw new Error(`${problem} (from $DEPOT_UPSTREAM or wrangler.toml [vars])`);
  const worker = await startWorker({ port: Number(process.env.PORT || 8787), r2Dir, bindings });
  if (process.env.DEPOT_STORE) {
    const images = await loadStore(process.env.DEPOT_STORE, worker.bucket);
    console.log(`loaded ${images.length} image(s) from ${process.env.DEPOT_STORE}`);
  }
  console.log(`depot.ai Worker listening on ${worker.url} (R2 in ${r2Dir})`);
  // Miniflare's own signal hooks exit with 128+signal before anything is closed; ours disposes
  // Miniflare (which stops workerd) and exits 0, as `depot-ai serve` does.
  const stop = () => void worker.close().then(() => process.exit(0));
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.removeAllListeners(signal);
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((error) => {
    console.error(`worker: ${(error as Error)?.message ?? error}`);
    process.exit(1);
  });
}
