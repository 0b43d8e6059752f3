// Site benchmark: build time for the real catalog and for a generated 10,000-model catalog, and the
// bytes the homepage ships (HTML, CSS, JS; raw and gzip) against the targets, at the real catalog
// (without and with facts) and at 1,000 generated models.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildSite, pageBytes, listFiles, makeTempDir, ROOT } from '../test/helpers/site.ts';
import { generatedCatalog, realCatalogWithFacts } from '../test/helpers/site-catalog.ts';

const TARGET_10K_MS = 120_000;
const TARGET_JS_GZIP = 5 * 1024;
const TARGET_TOTAL_GZIP = 60 * 1024;
const TARGET_1K_GZIP = 200 * 1024;

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

    const bytes = await pageBytes(real.outDir);
    console.log('site: homepage bytes      raw        gzip');
    const labels = { html: 'HTML (whole file)', css: 'CSS (inline + files)', js: 'JS (inline + files)', total: 'total (HTML + files)' };
    for (const [name, b] of Object.entries(bytes)) console.log(`  ${labels[name as keyof typeof labels].padEnd(22)}  ${kb(b.raw).padStart(10)} ${kb(b.gzip).padStart(10)}`);
    console.log(`site: homepage JS gzip    ${kb(bytes.js.gzip)} (target < ${kb(TARGET_JS_GZIP)}) ${verdict(bytes.js.gzip < TARGET_JS_GZIP)}`);
    console.log(`site: homepage total gzip ${kb(bytes.total.gzip)} (target < ${kb(TARGET_TOTAL_GZIP)}) ${verdict(bytes.total.gzip < TARGET_TOTAL_GZIP)}`);
    await rm(real.outDir, { recursive: true, force: true });

    const withFacts = await buildSite({ catalog: (await realCatalogWithFacts(path.join(ROOT, 'models/models.yaml'))).catalog, store: emptyStore, outDir: path.join(work, 'facts') });
    if (withFacts.code !== 0) throw new Error(`site build failed:\n${withFacts.stderr}`);
    const withFactsBytes = await pageBytes(withFacts.outDir);
    console.log(`site: homepage at the real catalog with facts: total gzip ${kb(withFactsBytes.total.gzip)} (target < ${kb(TARGET_TOTAL_GZIP)}) ${verdict(withFactsBytes.total.gzip < TARGET_TOTAL_GZIP)}`);
    await rm(withFacts.outDir, { recursive: true, force: true });

    const thousand = await buildSite({ catalog: (await generatedCatalog(1000)).catalog, store: emptyStore, outDir: path.join(work, 'thousand') });
    if (thousand.code !== 0) throw new Error(`site build failed:\n${thousand.stderr}`);
    const thousandBytes = await pageBytes(thousand.outDir);
    console.log(`site: homepage at 1,000 models: total gzip ${kb(thousandBytes.total.gzip)} (target < ${kb(TARGET_1K_GZIP)}) ${verdict(thousandBytes.total.gzip < TARGET_1K_GZIP)}`);
    await rm(thousand.outDir, { recursive: true, force: true });

    const { catalog } = await generatedCatalog(10_000);
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
