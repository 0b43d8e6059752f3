// Lighthouse (mobile, the default) on the homepage and a built model page, served locally with
// gzip, Debian's Chromium headless: every category's score against the target of 100, RUNS times
// each (scores move with the machine's load: Lighthouse scales the CPU time it observes), judged on
// the worst run.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { cachedSiteBuild, ROOT, serveStatic } from '../test/helpers/site.ts';
import { builtFixture, EMPTY_STORE, FIXTURE_HOST } from '../test/helpers/site-fixtures.ts';
import { realCatalogWithFacts } from '../test/helpers/site-catalog.ts';

const run = promisify(execFile);
const RUNS = 3;
const CHROME_FLAGS = '--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking --disable-component-update --disable-sync';

interface Report {
  categories: Record<string, { score: number }>;
  audits: Record<string, { score: number | null; scoreDisplayMode: string; displayValue?: string }>;
}

async function lighthouse(url: string): Promise<Report> {
  const { stdout } = await run(path.join(ROOT, 'node_modules/.bin/lighthouse'), [url, '--quiet', '--output=json', `--chrome-flags=${CHROME_FLAGS}`], {
    env: { ...process.env, CHROME_PATH: '/usr/bin/chromium' },
    maxBuffer: 256 * 1024 * 1024,
  });
  return JSON.parse(stdout) as Report;
}

export async function benchLighthouse(): Promise<void> {
  // The real catalog with facts for every model: the homepage as it is after the weekly update.
  const real = await serveStatic(await cachedSiteBuild({ catalog: (await realCatalogWithFacts(path.join(ROOT, 'models/models.yaml'))).catalog, store: EMPTY_STORE }));
  const built = await serveStatic(await cachedSiteBuild({ ...(await builtFixture()), registryHost: FIXTURE_HOST, siteUrl: 'https://models.example.test' }));
  try {
    for (const [label, url] of [['homepage (real catalog, with facts)', `${real.url}/`], ['model page (built, facts, sets, tree)', `${built.url}/runwayml/stable-diffusion-v1-5`]]) {
      const worst = new Map<string, number>();
      for (let i = 1; i <= RUNS; i++) {
        const report = await lighthouse(url);
        for (const [name, c] of Object.entries(report.categories)) worst.set(name, Math.min(worst.get(name) ?? 100, Math.round(c.score * 100)));
        const scores = Object.entries(report.categories).map(([name, c]) => `${name} ${Math.round(c.score * 100)}`);
        console.log(`site: lighthouse ${label} run ${i}/${RUNS}: ${scores.join(', ')}`);
        for (const [id, audit] of Object.entries(report.audits)) {
          if (audit.score !== null && audit.score < 1 && ['numeric', 'binary', 'metricSavings'].includes(audit.scoreDisplayMode)) console.log(`  ${id}: ${audit.score} ${audit.displayValue ?? ''}`);
        }
      }
      const all = [...worst.values()].every((score) => score === 100);
      console.log(`site: lighthouse ${label}, worst of ${RUNS}: ${[...worst].map(([name, score]) => `${name} ${score}`).join(', ')} (target 100 each) ${all ? 'ok' : 'MISSED'}`);
    }
  } finally {
    await real.close();
    await built.close();
  }
}
