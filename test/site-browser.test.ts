// The website in a real browser (headless Debian Chromium): filtering, copy buttons, keyboard use
// and axe-core accessibility checks.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { loadCatalog, type ModelEntry } from '../models/catalog.ts';
import { cachedSiteBuild, ROOT, serveStatic, type StaticServer } from './helpers/site.ts';
import { builtFixture, EMPTY_STORE, FIXTURE_HOST } from './helpers/site-fixtures.ts';

const REAL_CATALOG = path.join(ROOT, 'models/models.yaml');
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

let browser: Browser;
let entries: ModelEntry[];
let realSite: StaticServer;
let builtSite: StaticServer;

before(async () => {
  entries = await loadCatalog(REAL_CATALOG);
  const realDist = await cachedSiteBuild({ catalog: REAL_CATALOG, store: EMPTY_STORE });
  const fixture = await builtFixture();
  const builtDist = await cachedSiteBuild({ ...fixture, registryHost: FIXTURE_HOST, siteUrl: 'https://models.example.test' });
  realSite = await serveStatic(realDist);
  builtSite = await serveStatic(builtDist);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
  await realSite?.close();
  await builtSite?.close();
});

async function open(base: StaticServer, urlPath: string, width = 1280): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width, height: 900 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base.url });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const response = await page.goto(base.url + urlPath);
  assert.equal(response?.status(), 200, `${urlPath} loads`);
  // Closing the context also checks that no script threw.
  const close = context.close.bind(context);
  context.close = async (options) => {
    await close(options);
    assert.deepEqual(errors, [], `no script errors on ${urlPath}`);
  };
  return { context, page };
}

const visibleRows = (page: Page) => page.locator('#model-list > li:visible');
const clipboard = (page: Page) => page.evaluate(() => navigator.clipboard.readText());

describe('homepage filter', () => {
  test('narrows as you type, counts matches, says when nothing matches, and Escape restores', async () => {
    const { context, page } = await open(realSite, '/');
    try {
      assert.equal(await visibleRows(page).count(), entries.length);
      const input = page.getByLabel('Filter models');

      await input.pressSequentially('Stable-Diffusion');
      const expected = entries.filter((e) => e.name.toLowerCase().includes('stable-diffusion')).length;
      assert.ok(expected > 1 && expected < entries.length);
      assert.equal(await visibleRows(page).count(), expected);
      assert.equal(await page.locator('#model-count').textContent(), `${expected} of ${entries.length} models`);
      assert.equal(await page.locator('#model-empty').isVisible(), false);

      // Owner part and name part, in any case.
      await input.fill('RUNWAYML v1-5');
      assert.deepEqual(await visibleRows(page).locator('a').first().textContent(), 'runwayml/stable-diffusion-v1-5');
      assert.equal(await visibleRows(page).count(), 1);

      await input.fill('no-such-model-anywhere');
      assert.equal(await visibleRows(page).count(), 0);
      assert.equal(await page.locator('#model-empty').isVisible(), true);
      assert.match((await page.locator('#model-empty').textContent()) ?? '', /No models match/);

      await input.press('Escape');
      assert.equal(await input.inputValue(), '');
      assert.equal(await visibleRows(page).count(), entries.length);
      assert.equal(await page.locator('#model-count').textContent(), `${entries.length} models`);
      assert.equal(await page.locator('#model-empty').isVisible(), false);
    } finally {
      await context.close();
    }
  });
});

describe('copy buttons', () => {
  test('a homepage row copies exactly its COPY line', async () => {
    const { context, page } = await open(realSite, '/');
    try {
      for (const index of [0, entries.length - 1]) {
        const entry = entries[index];
        const button = page.locator('#model-list > li').nth(index).getByRole('button');
        await button.click();
        assert.equal(await clipboard(page), `COPY --link --from=depot.ai/${entry.image}:${entry.tag} / .`);
        assert.equal(await button.textContent(), 'Copied');
      }
    } finally {
      await context.close();
    }
  });

  test('copy works from the keyboard', async () => {
    const { context, page } = await open(realSite, '/');
    try {
      const entry = entries[1];
      await page.getByLabel('Filter models').fill(entry.name);
      await page.getByLabel('Filter models').press('Escape');
      const button = page.locator('#model-list > li').nth(1).getByRole('button');
      await button.focus();
      assert.equal(await button.evaluate((b) => b.matches(':focus-visible')), true);
      const outline = await button.evaluate((b) => getComputedStyle(b).outlineStyle);
      assert.notEqual(outline, 'none', 'focus is visible');
      await page.keyboard.press('Enter');
      assert.equal(await clipboard(page), `COPY --link --from=depot.ai/${entry.image}:${entry.tag} / .`);
    } finally {
      await context.close();
    }
  });

  test("a model page's snippets copy", async () => {
    const entry = entries.find((e) => e.name === 'runwayml/stable-diffusion-v1-5') ?? entries[0];
    const { context, page } = await open(realSite, `/${entry.name}`);
    try {
      const ref = `depot.ai/${entry.image}:${entry.tag}`;
      const expected = [ref, `COPY --link --from=${ref} / .`, `COPY --link --from=${ref} /path/to/file .`];
      const buttons = page.locator('main button[data-copy]');
      assert.equal(await buttons.count(), expected.length);
      for (let i = 0; i < expected.length; i++) {
        await buttons.nth(i).click();
        assert.equal(await clipboard(page), expected[i]);
      }
    } finally {
      await context.close();
    }
  });

  test("a built model page's file and pinned lines copy", async () => {
    const { context, page } = await open(builtSite, '/gpt2');
    try {
      const digest = (await page.locator('[data-digest]').textContent())!.trim();
      assert.match(digest, /^sha256:[0-9a-f]{64}$/);
      await page.getByRole('button', { name: 'Copy the line pinned by digest' }).click();
      assert.equal(await clipboard(page), `COPY --link --from=${FIXTURE_HOST}/gpt2@${digest} / .`);
      await page.getByRole('button', { name: 'Copy the line for sub/read me.txt' }).click();
      assert.equal(await clipboard(page), `COPY --link --from=${FIXTURE_HOST}/gpt2:latest ["/sub/read me.txt", "."]`);
      await page.getByRole('button', { name: 'Copy the line for config.json' }).click();
      assert.equal(await clipboard(page), `COPY --link --from=${FIXTURE_HOST}/gpt2:latest /config.json .`);
    } finally {
      await context.close();
    }
  });
});

describe('accessibility (axe-core)', () => {
  const cases: Array<[string, () => StaticServer, string, number]> = [
    ['homepage', () => realSite, '/', 1280],
    ['homepage at 360 px', () => realSite, '/', 360],
    ['model page', () => realSite, '/runwayml/stable-diffusion-v1-5', 1280],
    ['built model page at 360 px', () => builtSite, '/gpt2', 360],
    ['404 page', () => realSite, '/404', 1280],
  ];
  for (const [name, site, urlPath, width] of cases) {
    test(`${name}: no serious or critical violations`, async () => {
      const { context, page } = await open(site(), urlPath, width);
      try {
        await page.addScriptTag({ path: path.join(ROOT, 'node_modules/axe-core/axe.min.js') });
        const violations = await page.evaluate(async () => {
          // @ts-expect-error axe is injected above
          const result = await window.axe.run(document, { resultTypes: ['violations'] });
          return (result.violations as Array<{ id: string; impact: string; nodes: Array<{ target: string[] }> }>).map((v) => ({
            id: v.id,
            impact: v.impact,
            nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')),
          }));
        });
        const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
        assert.deepEqual(serious, [], JSON.stringify(serious, null, 2));
      } finally {
        await context.close();
      }
    });
  }

  test('no horizontal page scroll at 360 px', async () => {
    for (const [base, urlPath] of [[realSite, '/'], [builtSite, '/gpt2']] as const) {
      const { context, page } = await open(base, urlPath, 360);
      try {
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
        assert.equal(overflow, 0, `${urlPath} fits 360 px`);
      } finally {
        await context.close();
      }
    }
  });
});
