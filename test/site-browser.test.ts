// The website in a real browser (headless Debian Chromium): filtering, copy buttons, keyboard use
// and axe-core accessibility checks.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { loadCatalog, type ModelEntry } from '../models/catalog.ts';
import { cachedSiteBuild, listFiles, ROOT, serveStatic, type StaticServer } from './helpers/site.ts';
import { builtFixture, EMPTY_STORE, FIXTURE_DIFFUSERS, FIXTURE_HOST } from './helpers/site-fixtures.ts';
import { generatedCatalog, type GeneratedModel } from './helpers/site-catalog.ts';
import { startTestRegistry } from './helpers/registry.ts';
import { buildahRoot } from './helpers/site-buildah.ts';

const REAL_CATALOG = path.join(ROOT, 'models/models.yaml');
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

let browser: Browser;
let entries: ModelEntry[];
let realSite: StaticServer;
let builtSite: StaticServer;
let bigSite: StaticServer;
let bigModels: GeneratedModel[];
let fixture: { catalog: string; store: string };

before(async () => {
  entries = await loadCatalog(REAL_CATALOG);
  const realDist = await cachedSiteBuild({ catalog: REAL_CATALOG, store: EMPTY_STORE });
  fixture = await builtFixture();
  const builtDist = await cachedSiteBuild({ ...fixture, registryHost: FIXTURE_HOST, siteUrl: 'https://models.example.test' });
  const big = await generatedCatalog(1000);
  bigModels = big.models;
  realSite = await serveStatic(realDist);
  builtSite = await serveStatic(builtDist);
  bigSite = await serveStatic(await cachedSiteBuild({ catalog: big.catalog, store: EMPTY_STORE }));
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
  await realSite?.close();
  await builtSite?.close();
  await bigSite?.close();
});

async function open(base: StaticServer, urlPath: string, width = 1280, javaScriptEnabled = true): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width, height: 900 }, javaScriptEnabled });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base.url });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const response = await page.goto(base.url + urlPath);
  assert.equal(response?.status(), urlPath.startsWith('/no-such/') ? 404 : 200, `${urlPath} loads`);
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
      assert.equal(await input.isVisible(), true, 'the script shows the text filter');
      assert.equal(await page.locator('#model-sort').isVisible(), true, 'and the sort <select>');

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

/** Names of the visible rows in DOM order, which must also be the order they are drawn in (no CSS `order`). */
async function visibleNames(page: Page): Promise<string[]> {
  const { dom, drawn } = await page.locator('#model-list > li').evaluateAll((rows) => {
    // (No named functions in here: tsx's __name helper does not exist in the page.)
    const shown = rows.map((row) => ({ name: row.querySelector('a')!.textContent!, box: row.getBoundingClientRect() })).filter(({ box }) => box.height > 0);
    return { dom: shown.map((r) => r.name), drawn: [...shown].sort((a, b) => a.box.top - b.box.top).map((r) => r.name) };
  });
  assert.deepEqual(drawn, dom, 'rows are drawn in DOM order');
  return dom;
}

/** The model rows the keyboard reaches, in order, pressing Tab from the list's first link `count` rows on. */
async function tabbedRows(page: Page, count: number): Promise<string[]> {
  await page.locator('#model-list > li a').first().focus();
  const names: string[] = [];
  for (let presses = 0; names.length < count && presses < count * 5; presses++) {
    const name = await page.evaluate(() => document.activeElement?.closest('#model-list > li')?.querySelector('a')?.textContent);
    if (name && names.at(-1) !== name) names.push(name);
    await page.keyboard.press('Tab');
  }
  return names;
}

describe('homepage task and library filters and sorting (1,000 models)', () => {
  /** Names, largest `key` first, models without facts last, ties in catalog order. */
  const expectedBy = (models: GeneratedModel[], key: 'downloads' | 'bytes') =>
    models.map((m, i) => ({ m, i })).sort((a, b) => (b.m[key] ?? -1) - (a.m[key] ?? -1) || a.i - b.i).map(({ m }) => m.name);
  const byName = () => bigModels.map((m) => m.name).sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()));

  test('with JavaScript: filter by task and library; the sort <select> reorders the rows themselves', async () => {
    const { context, page } = await open(bigSite, '/');
    try {
      assert.equal(await visibleRows(page).count(), 1000);
      assert.equal(await page.locator('noscript').count(), 1, 'sort links only in <noscript>');
      await page.selectOption('#model-task', 'text-to-image');
      const images = bigModels.filter((m) => m.task === 'text-to-image');
      assert.ok(images.length > 20 && images.length < 500);
      assert.deepEqual(await visibleNames(page), images.map((m) => m.name));
      assert.equal(await page.locator('#model-count').textContent(), `${images.length} of 1000 models`);
      assert.ok(await page.locator('#model-count').isVisible(), 'with JavaScript the count stays, exact, under a filter');

      await page.selectOption('#model-library', 'diffusers');
      const both = images.filter((m) => m.library === 'diffusers');
      assert.deepEqual(await visibleNames(page), both.map((m) => m.name));

      await page.selectOption('#model-library', '');
      await page.selectOption('#model-sort', 'downloads');
      assert.deepEqual(await visibleNames(page), expectedBy(images, 'downloads'));
      await page.selectOption('#model-sort', 'size');
      assert.deepEqual(await visibleNames(page), expectedBy(images, 'bytes'));
      await page.selectOption('#model-sort', '');
      assert.deepEqual(await visibleNames(page), images.map((m) => m.name));

      await page.selectOption('#model-task', '');
      await page.selectOption('#model-sort', 'name');
      const shown = await visibleNames(page);
      assert.deepEqual(shown.slice(0, 50), byName().slice(0, 50));
      assert.equal(shown.length, 1000);
      assert.deepEqual(await tabbedRows(page, 5), byName().slice(0, 5));
    } finally {
      await context.close();
    }
  });

  test('with JavaScript on a sort page: the <select> starts at its order and goes back to catalog order', async () => {
    const { context, page } = await open(bigSite, '/sort--size');
    try {
      assert.equal(await page.locator('#model-sort').inputValue(), 'size');
      assert.deepEqual(await visibleNames(page), expectedBy(bigModels, 'bytes'));
      await page.selectOption('#model-sort', '');
      assert.deepEqual(await visibleNames(page), bigModels.map((m) => m.name));
      await page.getByLabel('Filter models').fill('delta');
      assert.deepEqual(await visibleNames(page), bigModels.filter((m) => m.name.includes('delta')).map((m) => m.name));
    } finally {
      await context.close();
    }
  });

  test('without JavaScript: no text filter or sort <select>; sorting is links to pages whose DOM and Tab order is the sort', async () => {
    const { context, page } = await open(bigSite, '/', 1280, false);
    try {
      assert.equal(await visibleRows(page).count(), 1000);
      // What does not work without JavaScript is neither shown nor reachable.
      for (const id of ['model-filter', 'model-sort']) {
        assert.equal(await page.locator(`#${id}`).isVisible(), false, `#${id} hidden`);
        await page.locator(`#${id}`).focus();
        assert.notEqual(await page.evaluate(() => document.activeElement?.id), id, `#${id} cannot take focus`);
      }
      await page.locator('#model-task').focus();
      const reached: string[] = [];
      for (let i = 0; i < 6; i++) {
        reached.push(await page.evaluate(() => document.activeElement!.id || document.activeElement!.textContent!));
        await page.keyboard.press('Tab');
      }
      assert.deepEqual(reached, ['model-task', 'model-library', 'Catalog order', 'Name', 'Size (largest first)', 'Downloads (most first)']);
      assert.equal(await page.getByRole('link', { name: 'Catalog order' }).getAttribute('aria-current'), 'page');

      // The count cannot follow a CSS filter: it is hidden while a task or library is chosen.
      const count = page.locator('#model-count');
      assert.ok(await count.isVisible());
      assert.equal(await count.textContent(), '1000 models');
      await page.selectOption('#model-library', 'diffusers');
      assert.equal(await count.isVisible(), false, 'no count under the library filter');
      await page.selectOption('#model-library', '');
      assert.ok(await count.isVisible(), 'the count again with no filter');
      await page.selectOption('#model-task', 'text-to-image');
      assert.equal(await count.isVisible(), false, 'no count under the task filter');
      const images = bigModels.filter((m) => m.task === 'text-to-image');
      assert.deepEqual(await visibleNames(page), images.map((m) => m.name));
      await page.selectOption('#model-library', 'diffusers');
      assert.deepEqual(await visibleNames(page), images.filter((m) => m.library === 'diffusers').map((m) => m.name));

      for (const [label, path, expected] of [
        ['Size (largest first)', '/sort--size', expectedBy(bigModels, 'bytes')],
        ['Downloads (most first)', '/sort--downloads', expectedBy(bigModels, 'downloads')],
        ['Name', '/sort--name', byName()],
      ] as const) {
        await page.getByRole('link', { name: label }).click();
        await page.waitForURL(bigSite.url + path);
        assert.equal(await page.getByRole('link', { name: label }).getAttribute('aria-current'), 'page');
        assert.equal(await page.getByRole('link', { name: 'Catalog order' }).getAttribute('aria-current'), null);
        assert.deepEqual(await visibleNames(page), expected, `${path}: DOM order`);
        assert.ok(await page.locator('#model-count').isVisible(), `${path}: a sort is no filter, the count stays`);
        if (path === '/sort--size') assert.deepEqual(await tabbedRows(page, 4), expected.slice(0, 4), `${path}: Tab order`);
        // The task filter works on the sort page too.
        await page.selectOption('#model-task', 'text-to-image');
        const names = new Set(images.map((m) => m.name));
        assert.deepEqual(await visibleNames(page), expected.filter((n) => names.has(n)), `${path}: filtered`);
      }
    } finally {
      await context.close();
    }
  });
});

describe('file sets and the file tree', () => {
  test('a set’s copied lines, built with buildah from the test store, give exactly the set’s files', { timeout: 300_000 }, async () => {
    const registry = await startTestRegistry({ store: fixture.store });
    const { context, page } = await open(builtSite, '/runwayml/stable-diffusion-v1-5');
    try {
      const set = page.locator('[data-file-set="diffusers-fp16"]');
      const paths = JSON.parse((await set.getAttribute('data-paths'))!) as string[];
      await set.getByRole('button').click();
      const lines = (await clipboard(page)).split('\n');
      assert.ok(lines.every((l) => l.startsWith(`COPY --link --from=${FIXTURE_HOST}/runwayml/stable-diffusion-v1-5:latest `)), lines.join('\n'));
      // buildah 1.28 rejects --link, and the site's host is the test registry here.
      const dockerfile = ['FROM scratch', 'WORKDIR /model', ...lines.map((l) => l.replace('COPY --link ', 'COPY ').replace(FIXTURE_HOST, registry.hostPort))].join('\n') + '\n';
      const root = await buildahRoot(registry.hostPort, dockerfile);
      try {
        const copied = (await listFiles(path.join(root.path, 'model'))).sort();
        assert.deepEqual(copied, [...paths].sort());
        for (const p of paths) assert.equal(await readFile(path.join(root.path, 'model', p), 'utf8'), FIXTURE_DIFFUSERS[p]);
      } finally {
        await root.close();
      }
    } finally {
      await context.close();
      await registry.close();
    }
  });

  test('the tree with the keyboard: Tab reaches a folder, Enter and Space close and open it', async () => {
    const { context, page } = await open(builtSite, '/runwayml/stable-diffusion-v1-5');
    try {
      const summary = page.locator('li[data-folder="unet"] > details > summary');
      const file = page.locator('li[data-path="unet/config.json"]');
      await page.locator('li[data-folder="tokenizer"] > details > summary').focus();
      // Tab past the tokenizer folder's copy button and its files' buttons, to the next folder.
      for (let i = 0; i < 10 && !(await summary.evaluate((s) => s === document.activeElement)); i++) await page.keyboard.press('Tab');
      assert.equal(await summary.evaluate((s) => s === document.activeElement), true, 'Tab reaches unet/');
      assert.equal(await summary.evaluate((s) => s.matches(':focus-visible') && getComputedStyle(s).outlineStyle !== 'none'), true, 'focus is visible');
      assert.equal(await file.isVisible(), true);
      await page.keyboard.press('Enter');
      assert.equal(await file.isVisible(), false, 'Enter closes the folder');
      await page.keyboard.press('Space');
      assert.equal(await file.isVisible(), true, 'Space opens it');
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Copy the line for the folder unet');
      await page.keyboard.press('Enter');
      assert.equal(await clipboard(page), `COPY --link --from=${FIXTURE_HOST}/runwayml/stable-diffusion-v1-5:latest /unet ./unet/`);
    } finally {
      await context.close();
    }
  });

  test('the tree filter shows matching files and their folders only; Escape restores', async () => {
    const { context, page } = await open(builtSite, '/runwayml/stable-diffusion-v1-5');
    try {
      const input = page.getByLabel('Filter files');
      await input.fill('fp16');
      const visible = await page.locator('li[data-path]:visible').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.path));
      assert.deepEqual(visible.sort(), Object.keys(FIXTURE_DIFFUSERS).filter((p) => p.includes('fp16')).sort());
      assert.equal(await page.locator('li[data-folder="vae"]').isVisible(), false);
      assert.match((await page.locator('[data-tree-count]').textContent()) ?? '', /^2 of 14 files$/);
      await input.press('Escape');
      assert.equal(await page.locator('li[data-path]:visible').count(), Object.keys(FIXTURE_DIFFUSERS).length);
    } finally {
      await context.close();
    }
  });

  test('without JavaScript the tree still opens and closes, and the filter box stays hidden', async () => {
    const { context, page } = await open(builtSite, '/runwayml/stable-diffusion-v1-5', 1280, false);
    try {
      assert.equal(await page.getByLabel('Filter files').isVisible(), false);
      const file = page.locator('li[data-path="unet/config.json"]');
      assert.equal(await file.isVisible(), true);
      await page.locator('li[data-folder="unet"] > details > summary').click();
      assert.equal(await file.isVisible(), false);
    } finally {
      await context.close();
    }
  });
});

describe('404 page', () => {
  test('suggests the nearest model names', async () => {
    const { context, page } = await open(realSite, '/no-such/stable-diffusion-v1.5');
    try {
      const links = await page.locator('#suggestions a').allTextContents();
      assert.equal(links.length, 5);
      assert.ok(links.includes('runwayml/stable-diffusion-v1-5'), links.join(', '));
      assert.equal(await page.locator('#suggestions a').first().getAttribute('href'), `/${links[0]}`);
      assert.equal(await page.locator('#no-suggestions').isVisible(), false);
    } finally {
      await context.close();
    }
  });

  test('without JavaScript: a note links to the list, and /<name> without its owner answers with the models of that name', async () => {
    const { context, page } = await open(realSite, '/no-such/stable-diffusion-v1.5', 1280, false);
    try {
      assert.equal(await page.locator('#suggestions').isVisible(), false);
      const note = page.locator('#no-suggestions');
      assert.equal(await note.isVisible(), true);
      assert.equal(await note.getByRole('link').getAttribute('href'), '/#models');
      const model = entries.find((e) => e.name === 'runwayml/stable-diffusion-v1-5')!;
      await page.goto(`${realSite.url}/stable-diffusion-v1-5`);
      await page.getByRole('link', { name: model.name }).click();
      await page.waitForURL(`${realSite.url}/${model.name}`);
      assert.match((await page.locator('h1').textContent()) ?? '', /stable-diffusion-v1-5/);
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
      const expected = [ref, `COPY --link --from=${ref} / .`, `COPY --link --from=${ref} /path/to/file .`, `COPY --link --from=depot.ai/${entry.image}:${entry.sha} / .`];
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
    ['404 page with suggestions', () => realSite, '/no-such/gpt-2', 1280],
    ['owner-less name page', () => realSite, '/stable-diffusion-v1-5', 1280],
    ['sort page at 360 px', () => builtSite, '/sort--size', 360],
    ['model page with facts, sets and a tree at 360 px', () => builtSite, '/runwayml/stable-diffusion-v1-5', 360],
    ['model page with facts, sets and a tree', () => builtSite, '/runwayml/stable-diffusion-v1-5', 1280],
    ['homepage with facts and filters', () => builtSite, '/', 1280],
  ];
  for (const [name, site, urlPath, width] of cases) {
    test(`${name}: no violations`, async () => {
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
        assert.deepEqual(violations, [], JSON.stringify(violations, null, 2));
      } finally {
        await context.close();
      }
    });
  }

  test('no horizontal page scroll at 360 px', async () => {
    for (const [base, urlPath] of [[realSite, '/'], [builtSite, '/gpt2'], [builtSite, '/runwayml/stable-diffusion-v1-5'], [builtSite, '/']] as const) {
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
