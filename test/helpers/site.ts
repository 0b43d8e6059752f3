// Test helpers for the website: build it with `astro build` in a child process (so a broken catalog
// can exit as it would in CI), cache builds by their inputs, and serve a build over HTTP.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { createGzip, gzipSync } from 'node:zlib';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';

import { ROOT } from './cli.ts';

export { ROOT };
const ASTRO = path.join(ROOT, 'node_modules/astro/astro.js');

export interface SiteBuildOptions {
  catalog?: string;
  store?: string;
  registryHost?: string;
  siteUrl?: string;
  /** DEPOT_REGISTRY_URL: read images (and their provenance) from this registry instead of the store. */
  registryUrl?: string;
  /** DEPOT_PROVENANCE_KEY: the PEM public key whose signed provenance pages show. */
  provenanceKey?: string;
  outDir: string;
}

export interface SiteBuildResult {
  code: number | null;
  stdout: string;
  stderr: string;
  outDir: string;
  ms: number;
}

/** Run `astro build` from the repository root with the site's environment settings. */
export function buildSite(options: SiteBuildOptions): Promise<SiteBuildResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, DEPOT_SITE_OUT_DIR: options.outDir, ASTRO_TELEMETRY_DISABLED: '1' };
  for (const [key, value] of [
    ['DEPOT_CATALOG', options.catalog],
    ['DEPOT_STORE', options.store],
    ['DEPOT_REGISTRY_HOST', options.registryHost],
    ['DEPOT_SITE_URL', options.siteUrl],
    ['DEPOT_PROVENANCE_KEY', options.provenanceKey],
    ['DEPOT_PROVENANCE_IDENTITY', undefined],
  ] as const) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  if (options.registryUrl !== undefined) env.DEPOT_REGISTRY_URL = options.registryUrl;
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [ASTRO, 'build', '--silent'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, outDir: options.outDir, ms: performance.now() - started }));
  });
}

async function* walk(dir: string): AsyncGenerator<string> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(full);
    else if (entry.isFile()) yield full;
  }
}

/** Every file under `dir`, relative to it, sorted. */
export async function listFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  for await (const file of walk(dir)) files.push(path.relative(dir, file));
  return files;
}

/** A key for everything a site build depends on: site sources, configs, catalog, store metadata. */
async function inputsKey(options: Omit<SiteBuildOptions, 'outDir'>): Promise<string> {
  const hash = createHash('sha256');
  const sources = ['astro.config.mjs', 'tailwind.config.mjs', 'package-lock.json', 'models/catalog.ts', 'models/facts.ts'];
  for (const dir of ['site', 'builder']) for (const f of await listFiles(path.join(ROOT, dir))) sources.push(path.join(dir, f));
  for (const f of sources) {
    hash.update(f + '\0');
    if (existsSync(path.join(ROOT, f))) hash.update(await readFile(path.join(ROOT, f)));
  }
  hash.update(JSON.stringify([options.catalog, options.registryHost, options.siteUrl, options.store]));
  const catalog = path.resolve(ROOT, options.catalog ?? 'models/models.yaml');
  for (const file of [catalog, path.join(path.dirname(catalog), 'facts.json')]) hash.update(await readFile(file).catch(() => Buffer.from('missing')));
  if (options.store) {
    for (const f of await listFiles(options.store)) {
      hash.update(f + '\0');
      if (f.endsWith('index.json')) hash.update(await readFile(path.join(options.store, f)));
    }
  }
  return hash.digest('hex').slice(0, 24);
}

/**
 * Build the site once per set of inputs and reuse the result (across test files and runs).
 * Fails when the build fails.
 */
export async function cachedSiteBuild(options: Omit<SiteBuildOptions, 'outDir'> = {}): Promise<string> {
  const key = await inputsKey(options);
  const outDir = path.join(os.tmpdir(), 'depot-ai-site-cache', key);
  const marker = path.join(outDir, '.depot-build-complete');
  if (existsSync(marker)) return outDir;
  await rm(outDir, { recursive: true, force: true });
  const result = await buildSite({ ...options, outDir });
  if (result.code !== 0) throw new Error(`astro build failed (${result.code}):\n${result.stderr}\n${result.stdout}`);
  await writeFile(marker, new Date().toISOString());
  await pruneCache(path.dirname(outDir), key);
  return outDir;
}

/** Remove cached builds older than a day (inputs change with every edit of the site). */
async function pruneCache(cache: string, keep: string): Promise<void> {
  const dayAgo = Date.now() - 24 * 3600 * 1000;
  for (const entry of await readdir(cache)) {
    if (entry === keep) continue;
    const info = await stat(path.join(cache, entry)).catch(() => undefined);
    if (info && info.mtimeMs < dayAgo) await rm(path.join(cache, entry), { recursive: true, force: true });
  }
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.xml': 'application/xml',
  '.txt': 'text/plain; charset=utf-8',
  '.json': 'application/json',
};

/** Resolve a URL path to a file the way a static host does: exact file, then `.html`, then `/index.html`. */
export async function resolveStatic(dir: string, urlPath: string): Promise<string | undefined> {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return undefined;
  }
  const base = path.join(dir, path.normalize(decoded).replace(/^(\.\.[/\\])+/, ''));
  if (!base.startsWith(dir)) return undefined;
  for (const candidate of [base, base + '.html', path.join(base, 'index.html')]) {
    const info = await stat(candidate).catch(() => undefined);
    if (info?.isFile()) return candidate;
  }
  return undefined;
}

export interface StaticServer {
  url: string;
  close(): Promise<void>;
}

/** Serve a built site on 127.0.0.1 (random port), with 404.html for missing paths, gzip when asked. */
export async function serveStatic(dir: string): Promise<StaticServer> {
  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const file = await resolveStatic(dir, url.pathname);
    const status = file ? 200 : 404;
    const body = file ?? path.join(dir, '404.html');
    // Compressed like any static host, so Lighthouse measures what users get.
    const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    res.writeHead(status, { 'content-type': TYPES[path.extname(body)] ?? 'application/octet-stream', ...(gzip ? { 'content-encoding': 'gzip' } : {}) });
    if (gzip) createReadStream(body).pipe(createGzip()).pipe(res);
    else createReadStream(body).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export async function makeTempDir(prefix: string): Promise<string> {
  const dir = path.join(os.tmpdir(), `${prefix}-${process.pid}-${Math.random().toString(36).slice(2)}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

interface Bytes {
  raw: number;
  gzip: number;
}

const measure = (text: Buffer | string): Bytes => ({ raw: Buffer.byteLength(text), gzip: gzipSync(text, { level: 9 }).length });

/** Bytes of HTML, CSS and JS a page (`file`, default the homepage) of a built site ships (inline scripts count as JS too). */
export async function pageBytes(dist: string, file = 'index.html'): Promise<{ html: Bytes; css: Bytes; js: Bytes; total: Bytes }> {
  const html = await readFile(path.join(dist, file), 'utf8');
  const urls = [...html.matchAll(/\s(?:src|href)="(\/[^"]+\.(?:css|js))"/g)].map((m) => m[1]);
  const css: Buffer[] = [Buffer.from([...html.matchAll(/<style\b[^>]*>(.*?)<\/style>/gs)].map((m) => m[1]).join(''))];
  const js: Buffer[] = [Buffer.from([...html.matchAll(/<script\b[^>]*>(.*?)<\/script>/gs)].map((m) => m[1]).join(''))];
  for (const url of urls) (url.endsWith('.css') ? css : js).push(await readFile(path.join(dist, url)));
  const external = urls.length ? await Promise.all(urls.map((u) => readFile(path.join(dist, u)))) : [];
  const total = measure(Buffer.concat([Buffer.from(html), ...external]));
  // Total gzip counts each file compressed on its own, as a server sends them.
  total.gzip = measure(html).gzip + external.reduce((sum, b) => sum + measure(b).gzip, 0);
  return { html: measure(html), css: measure(Buffer.concat(css)), js: measure(Buffer.concat(js)), total };
}
