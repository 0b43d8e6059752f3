// Test helpers for the registry: real images built by the builder CLI into a temp store, a
// registry started on a free port, raw HTTP requests (fetch would normalise `..` and encodings),
// and the CNCF registry (Debian docker-registry) started on 127.0.0.1 as an upstream or baseline.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { LayoutStore } from '../../registry/fs-store.ts';
import type { ByteRange } from '../../registry/range.ts';
import { startRegistry, type RegistryOptions, type RunningRegistry } from '../../registry/server.ts';

import { ROOT } from './cli.ts';
import { tempDir as tempFolder } from './models.ts';

export { ROOT };
const run = promisify(execFile);

/** A new folder `depot-<prefix>-XXXXXX` under the OS temp folder, removed when the test process exits. */
export async function tempDir(prefix: string): Promise<string> {
  return tempFolder(`depot-${prefix}-`);
}

/** Deterministic pseudo-random bytes (a sha256 counter stream). */
export function pseudoRandom(seed: string, size: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let offset = 0;
  for (let i = 0; offset < size; i++) {
    const block = createHash('sha256').update(`${seed}:${i}`).digest();
    offset += block.copy(out, offset);
  }
  return out;
}

/** A small model in Hugging Face layout; `weights` bytes of safetensors (chunked when > 4 MiB). */
export async function writeModelFolder(dir: string, seed = 'model', weights = 6 * 1024 * 1024): Promise<Record<string, Buffer>> {
  const files: Record<string, Buffer> = {
    'config.json': Buffer.from(JSON.stringify({ model_type: 'tiny', hidden_size: 8, seed }, null, 2)),
    'tokenizer.json': Buffer.from(JSON.stringify({ version: '1.0', vocab: { a: 0, b: 1 } })),
    'model.safetensors': pseudoRandom(seed, weights),
    'nested/dir/notes.txt': Buffer.from(`notes for ${seed}\n`),
  };
  for (const [name, bytes] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), bytes);
  }
  return files;
}

/** `depot-ai build NAME --from DIR --store STORE --tag TAG [ARGS...]` (the real builder). */
export async function buildImage(name: string, from: string, store: string, tag = 'latest', args: string[] = []): Promise<void> {
  await run(process.execPath, [path.join(ROOT, 'bin/depot-ai.js'), 'build', name, '--from', from, '--store', store, '--tag', tag, ...args], {
    cwd: ROOT,
    env: { ...process.env, SOURCE_DATE_EPOCH: '0' },
  });
}

export interface TestImage {
  store: string;
  name: string;
  tag: string;
  files: Record<string, Buffer>;
  /** Digest of what the tag points at (the index). */
  index: string;
  /** The linux/amd64 manifest, its config and its (only) layer. */
  manifest: string;
  config: string;
  layer: string;
  layerSize: number;
}

/** Build one image into a fresh store and read back its digests. */
export async function makeTestImage(options: { name?: string; tag?: string; weights?: number; seed?: string; store?: string; sha?: string } = {}): Promise<TestImage> {
  const store = options.store ?? (await tempDir('store'));
  const src = await tempDir('src');
  const name = options.name ?? 'Test-Org/Tiny-Model';
  const tag = options.tag ?? 'v1';
  const files = await writeModelFolder(src, options.seed ?? name, options.weights);
  await buildImage(name, src, store, tag, options.sha ? ['--sha', options.sha] : []);
  await rm(src, { recursive: true, force: true });
  return { store, name: name.toLowerCase(), tag, files, ...(await imageDigests(store, name.toLowerCase(), tag)) };
}

export async function imageDigests(store: string, name: string, tag: string) {
  const dir = path.join(store, ...name.split('/'));
  const blob = async (digest: string) => JSON.parse(await readFile(path.join(dir, 'blobs/sha256', digest.slice(7)), 'utf8'));
  const index = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8'));
  const top = index.manifests.find((d: any) => d.annotations?.['org.opencontainers.image.ref.name'] === tag);
  const imageIndex = await blob(top.digest);
  const amd64 = imageIndex.manifests.find((d: any) => d.platform?.architecture === 'amd64');
  const manifest = await blob(amd64.digest);
  return {
    index: top.digest as string,
    manifest: amd64.digest as string,
    config: manifest.config.digest as string,
    layer: manifest.layers[0].digest as string,
    layerSize: manifest.layers[0].size as number,
  };
}

export interface TestRegistry extends RunningRegistry {
  lines: string[];
  /** host:port, as image references want it. */
  hostPort: string;
}

export async function startTestRegistry(options: RegistryOptions): Promise<TestRegistry> {
  const lines: string[] = [];
  const registry = await startRegistry({ host: '127.0.0.1', port: 0, log: (line) => lines.push(line), ...options });
  return Object.assign(registry, { lines, hostPort: `127.0.0.1:${registry.port}` });
}

/**
 * A store whose blob reads wait for release(): a request is then provably in flight inside the
 * server (`entered` has resolved), which shutdown tests need (a fixed sleep races under load).
 */
export class HeldStore extends LayoutStore {
  private enter!: () => void;
  readonly entered = new Promise<void>((resolve) => (this.enter = resolve));
  private open!: () => void;
  private readonly opened = new Promise<void>((resolve) => (this.open = resolve));

  release(): void {
    this.open();
  }

  override async openBlob(name: string, digest: string, range?: ByteRange) {
    this.enter();
    await this.opened;
    return super.openBlob(name, digest, range);
  }
}

/**
 * Polls `probe` (every 10 ms, up to 5 s) until it returns something truthy, and returns that; for
 * effects that follow a response asynchronously, such as its request-log line.
 */
export async function eventually<T>(probe: () => T | undefined | false, what: string, limitMs = 5000): Promise<T> {
  for (let waited = 0; ; waited += 10) {
    const value = probe();
    if (value) return value;
    if (waited >= limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One HTTP request with the path sent exactly as given. */
export function raw(base: string, pathname: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<RawResponse> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        method: options.method ?? 'GET',
        path: pathname,
        headers: options.body === undefined ? options.headers : { 'Content-Length': String(Buffer.byteLength(options.body)), ...options.headers },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

export function errorCode(res: RawResponse): string | undefined {
  try {
    return JSON.parse(res.body.toString('utf8')).errors?.[0]?.code;
  } catch {
    return undefined;
  }
}

/** A tool the tests need (npm test installs them first): its absence is a failure, never a skip. */
export function tool(file: string): string {
  if (existsSync(file)) return file;
  throw new Error(`${file} is missing (run: node scripts/ensure-tools.js)`);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

export function runTool(file: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ stdout: string; stderr: string }> {
  return run(file, args, { env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 });
}

export interface CncfRegistry {
  url: string;
  hostPort: string;
  dir: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * The CNCF Distribution registry (Debian docker-registry) on 127.0.0.1, filesystem storage in a
 * temp dir. `config` adds top-level sections (e.g. `auth:`) to its config.yml.
 */
export async function startCncfRegistry(options: { dir?: string; port?: number; config?: string[] } = {}): Promise<CncfRegistry> {
  const binary = '/usr/bin/docker-registry';
  const dir = options.dir ?? (await tempDir('cncf'));
  const port = options.port ?? (await freePort());
  const config = path.join(dir, 'config.yml');
  await mkdir(path.join(dir, 'data'), { recursive: true });
  await writeFile(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${path.join(dir, 'data')}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      ...(options.config ?? []),
      '',
    ].join('\n'),
  );
  const child = spawn(binary, ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr += d));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited: ${stderr}`);
    try {
      const res = await fetch(`${url}/v2/`);
      if (res.status === 200 || res.status === 401) break;
    } catch {
      // not listening yet
    }
    if (i > 100) throw new Error(`docker-registry did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    hostPort: `127.0.0.1:${port}`,
    dir,
    process: child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Copy an OCI layout image into a registry with skopeo (all platforms, digests preserved), as `name:tag` there unless `as` (`name:tag`) says otherwise. */
export async function pushLayout(store: string, name: string, tag: string, target: string, as = `${name}:${tag}`): Promise<void> {
  await runTool('/usr/bin/skopeo', [
    'copy',
    '--all',
    '--preserve-digests',
    '--dest-tls-verify=false',
    `oci:${path.join(store, ...name.split('/'))}:${tag}`,
    `docker://${target}/${as}`,
  ]);
}
