// Site benchmark: build time for the real catalog and for a generated 10,000-model catalog, and the
// bytes the homepage ships (HTML, CSS, JS; raw and gzip) against the targets.
import { createHash } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { buildSite, listFiles, makeTempDir, ROOT } from '../test/helpers/site.ts';

const TARGET_10K_MS = 120_000;
const TARGET_JS_GZIP = 5 * 1024;
const TARGET_TOTAL_GZIP = 60 * 1024;

function generatedCatalog(count: number): string {
  const lines = ['models:'];
  for (let i = 0; i < count; i++) {
    const sha = createHash('sha1').update(String(i)).digest('hex');
    lines.push(`  - name: org-${i % 700}/Model-${i}-base`, `    sha: ${sha}`, `    tag: latest`);
  }
  return lines.join('\n') + '\n';
}

interface Bytes {
  raw: number;
  gzip: number;
}

const measure = (text: Buffer | string): Bytes => ({ raw: Buffer.byteLength(text), gzip: gzipSync(text, { level: 9 }).length });

/** Bytes of HTML, CSS and JS the homepage of a built site ships (inline scripts count as JS too). */
export async function homepageBytes(dist: string): Promise<{ html: Bytes; css: Bytes; js: Bytes; total: Bytes }> {
  const html = await readFile(path.join(dist, 'index.html'), 'utf8');
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

const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
const verdict = (ok: boolean) => (ok ? 'ok' : 'MISSED');

export async function benchSite(): Promise<void> {
  const work = await makeTempDir('depot-bench-site');
  const emptyStore = path.join(work, 'store');
  try {
    console.log('site: building for the real catalog…');
    const real = await buildSite({ catalog: path.join(ROOT, 'models/models.yaml'), store: emptyStore, outDir: path.join(work, 'real') });
    if (real.code !== 0) throw new Error(`site build failed:\n${real.stderr}`);
    const realPages = (await listFiles(real.outDir)).filter((f) => f.endsWith('.html')).length;
    console.log(`site: real catalog        ${(real.ms / 1000).toFixed(1)} s, ${realPages} pages`);

    const bytes = await homepageBytes(real.outDir);
    console.log('site: homepage bytes      raw        gzip');
    const labels = { html: 'HTML (whole file)', css: 'CSS (inline + files)', js: 'JS (inline + files)', total: 'total (HTML + files)' };
    for (const [name, b] of Object.entries(bytes)) console.log(`  ${labels[name as keyof typeof labels].padEnd(22)}  ${kb(b.raw).padStart(10)} ${kb(b.gzip).padStart(10)}`);
    console.log(`site: homepage JS gzip    ${kb(bytes.js.gzip)} (target < ${kb(TARGET_JS_GZIP)}) ${verdict(bytes.js.gzip < TARGET_JS_GZIP)}`);
    console.log(`site: homepage total gzip ${kb(bytes.total.gzip)} (target < ${kb(TARGET_TOTAL_GZIP)}) ${verdict(bytes.total.gzip < TARGET_TOTAL_GZIP)}`);
    await rm(real.outDir, { recursive: true, force: true });

    const catalog = path.join(work, 'models-10k.yaml');
    await writeFile(catalog, generatedCatalog(10_000));
    console.log('site: building for a generated 10,000-model catalog…');
    const big = await buildSite({ catalog, store: emptyStore, outDir: path.join(work, 'big') });
    if (big.code !== 0) throw new Error(`site build failed:\n${big.stderr}`);
    const bigPages = (await listFiles(big.outDir)).filter((f) => f.endsWith('.html')).length;
    console.log(`site: 10,000 models       ${(big.ms / 1000).toFixed(1)} s, ${bigPages} pages (target < ${TARGET_10K_MS / 1000} s) ${verdict(big.ms < TARGET_10K_MS)}`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) await benchSite();
