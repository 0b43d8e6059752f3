// The website build: one page per catalog entry, the homepage's list and snippets, no broken
// internal links, the store's data on built models, and a broken catalog stopping the build.
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { CatalogError, loadCatalog, type ModelEntry } from '../models/catalog.ts';
import { readImageInfo } from '../builder/image-info.ts';
import { depotAi } from './helpers/cli.ts';
import { buildSite, cachedSiteBuild, pageBytes, listFiles, makeTempDir, resolveStatic, ROOT } from './helpers/site.ts';
import { generatedCatalog, realCatalogWithFacts } from './helpers/site-catalog.ts';
import { builtFixture, EMPTY_STORE, FIXTURE_DIFFUSERS, FIXTURE_FILES, FIXTURE_HOST } from './helpers/site-fixtures.ts';

const REAL_CATALOG = path.join(ROOT, 'models/models.yaml');

function decode(text: string): string {
  return text
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&#x27;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&#(\d+);/g, (_, n) => String.fromCodePoint(Number(n)))
    .replace(/&amp;/g, '&');
}

/** Attribute values of `attr` in `html`, decoded. */
function attrs(html: string, attr: string): string[] {
  return [...html.matchAll(new RegExp(`\\s${attr}="([^"]*)"`, 'g'))].map((m) => decode(m[1]));
}

function pageFile(dist: string, name: string): string {
  return path.join(dist, `${name}.html`);
}

describe('site build for the real catalog', () => {
  let dist: string;
  let entries: ModelEntry[];

  before(async () => {
    entries = await loadCatalog(REAL_CATALOG);
    dist = await cachedSiteBuild({ catalog: REAL_CATALOG, store: EMPTY_STORE });
  });

  test('every catalog entry gets a page with its snippet, revision and source link', async () => {
    assert.ok(entries.length >= 100);
    for (const entry of entries) {
      const html = await readFile(pageFile(dist, entry.name), 'utf8');
      const snippet = `COPY --link --from=depot.ai/${entry.image}:${entry.tag} / .`;
      assert.ok(attrs(html, 'data-copy').includes(snippet), `${entry.name}: copy button for ${snippet}`);
      assert.ok(attrs(html, 'href').includes(`https://huggingface.co/${entry.name}/tree/${entry.sha}`), `${entry.name}: source link`);
      assert.ok(html.includes(entry.sha), `${entry.name}: revision`);
      assert.ok(html.includes('/path/to/file'), `${entry.name}: placeholder file path while not built`);
      assert.ok(!html.includes('@sha256:'), `${entry.name}: no digest while not built`);
      assert.match(html, new RegExp(`<title>${entry.name.replace(/\./g, '\\.')} — depot\\.ai</title>`));
      assert.ok(attrs(html, 'href').includes(`https://depot.ai/${entry.name}`), `${entry.name}: canonical URL`);
    }
  });

  test('the homepage lists every model, in catalog order, with the exact snippet', async () => {
    const html = await readFile(path.join(dist, 'index.html'), 'utf8');
    const rows = [...html.matchAll(/<li data-name="([^"]*)"[^>]*>(.*?)<\/li>/gs)];
    assert.equal(rows.length, entries.length);
    rows.forEach((row, i) => {
      const entry = entries[i];
      assert.equal(decode(row[1]), entry.name.toLowerCase());
      assert.deepEqual(attrs(row[2], 'data-copy'), [`COPY --link --from=depot.ai/${entry.image}:${entry.tag} / .`]);
      const hrefs = attrs(row[2], 'href');
      assert.ok(hrefs.includes(`/${entry.name}`), `${entry.name}: link to its page`);
      assert.ok(hrefs.includes(`https://huggingface.co/${entry.name}/tree/${entry.sha}`), `${entry.name}: source link`);
      assert.ok(row[2].includes(`depot.ai/${entry.image}:${entry.tag}`), `${entry.name}: image reference`);
    });
    assert.match(html, /<label for="model-filter"/);
    assert.ok(html.includes(`${entries.length} models`));
  });

  test('the homepage explains both COPY forms, how it works and how to add a model', async () => {
    const html = await readFile(path.join(dist, 'index.html'), 'utf8');
    const text = decode(html.replace(/<[^>]+>/g, ''));
    assert.ok(text.includes('COPY --link --from=depot.ai/runwayml/stable-diffusion-v1-5 / .'));
    assert.ok(text.includes('COPY --link --from=depot.ai/runwayml/stable-diffusion-v1-5 /v1-5-pruned.ckpt .'));
    assert.match(html, /class="shiki/, 'the Dockerfile is highlighted by shiki');
    for (const words of ['One layer', 'FROM scratch', 'SOURCE_DATE_EPOCH=0', 'eStargz', 'models/models.yaml', 'pull request', 'with Docker 20.10 or buildah 1.28, drop --link']) {
      assert.ok(text.includes(words), words);
    }
    for (const id of ['models', 'how-it-works', 'add-a-model']) assert.ok(html.includes(`id="${id}"`), id);
  });

  test('no broken internal links or assets', async () => {
    const files = await listFiles(dist);
    const pages = files.filter((f) => f.endsWith('.html'));
    assert.ok(pages.length >= entries.length + 2);
    const ids = new Map<string, Set<string>>();
    const idsOf = async (file: string) => {
      let set = ids.get(file);
      if (!set) {
        set = new Set(attrs(await readFile(file, 'utf8'), 'id'));
        ids.set(file, set);
      }
      return set;
    };
    let checked = 0;
    for (const page of pages) {
      const html = await readFile(path.join(dist, page), 'utf8');
      for (const link of [...attrs(html, 'href'), ...attrs(html, 'src')]) {
        if (/^[a-z]+:/i.test(link) || link.startsWith('//')) continue;
        const url = new URL(link, `http://site/${page.replace(/\.html$/, '')}`);
        const target = await resolveStatic(dist, url.pathname);
        assert.ok(target, `${page}: broken link ${link}`);
        if (url.hash && target.endsWith('.html')) {
          assert.ok((await idsOf(target)).has(decodeURIComponent(url.hash.slice(1))), `${page}: missing anchor ${link}`);
        }
        checked++;
      }
    }
    assert.ok(checked > entries.length * 2);
  });

  test('404 page, favicon and a sitemap listing every model page', async () => {
    const notFound = await readFile(path.join(dist, '404.html'), 'utf8');
    assert.match(notFound, /Page not found/);
    assert.ok((await readFile(path.join(dist, 'favicon.svg'), 'utf8')).startsWith('<svg'));
    const sitemaps = (await listFiles(dist)).filter((f) => /^sitemap-\d+\.xml$/.test(f));
    assert.ok(sitemaps.length >= 1);
    const locs = new Set<string>();
    for (const f of sitemaps) for (const m of (await readFile(path.join(dist, f), 'utf8')).matchAll(/<loc>([^<]*)<\/loc>/g)) locs.add(decode(m[1]));
    assert.ok(locs.has('https://depot.ai/'));
    for (const entry of entries) assert.ok(locs.has(`https://depot.ai/${entry.name}`), `sitemap lists ${entry.name}`);
    assert.ok(![...locs].some((l) => l.includes('404')));
    // Pages marked noindex (sort pages, owner-less name pages) are not listed.
    assert.ok(![...locs].some((l) => l.includes('/sort--')));
    assert.equal(locs.size, new Set(entries.map((e) => e.image)).size + 1, 'the homepage and one page per image');
  });

  test('a sort page per order lists every model in that order in its HTML, marked noindex, within the homepage budget', async () => {
    for (const key of ['name', 'size', 'downloads']) {
      const html = await readFile(path.join(dist, `sort--${key}.html`), 'utf8');
      assert.match(html, /<meta name="robots" content="noindex">/);
      assert.equal([...html.matchAll(/<li data-name=/g)].length, entries.length);
      assert.match(html, new RegExp(`<a href="/sort--${key}" aria-current="page"`));
      const { total: { gzip } } = await pageBytes(dist, `sort--${key}.html`);
      assert.ok(gzip < 60 * 1024, `sort--${key} is ${gzip} bytes gzip`);
    }
    const byName = [...(await readFile(path.join(dist, 'sort--name.html'), 'utf8')).matchAll(/<li data-name="([^"]*)"/g)].map((m) => decode(m[1]));
    assert.deepEqual(byName, entries.map((e) => e.name.toLowerCase()).sort((a, b) => a.localeCompare(b)));
  });

  test('a page per repository name without its owner links to the models of that name, unless the name is a bare catalog name', async () => {
    const bare = new Set(entries.filter((e) => !e.name.includes('/')).map((e) => e.name.toLowerCase()));
    let pages = 0;
    for (const entry of entries.filter((e) => e.name.includes('/'))) {
      const repo = entry.name.split('/')[1];
      const html = await readFile(pageFile(dist, repo), 'utf8');
      if (bare.has(repo.toLowerCase())) {
        assert.ok(!html.includes('noindex'), `/${repo} stays the bare-named model's page`);
        continue;
      }
      pages++;
      assert.match(html, /<meta name="robots" content="noindex">/, repo);
      assert.ok(attrs(html, 'href').includes(`/${entry.name}`), `/${repo} links to /${entry.name}`);
    }
    assert.ok(pages > 50, `${pages} owner-less pages`);
  });

  test('the homepage ships under 5 KB of JavaScript and 60 KB in all (gzip)', async () => {
    const { js: { gzip: js }, total: { gzip: total } } = await pageBytes(dist);
    assert.ok(js < 5 * 1024, `JS is ${js} bytes gzip`);
    assert.ok(total < 60 * 1024, `homepage is ${total} bytes gzip`);
  });

  test('no facts fetched yet: no facts shown, no empty filters', async () => {
    const html = await readFile(pageFile(dist, entries[0].name), 'utf8');
    assert.ok(!html.includes('data-facts'), 'no facts block');
    const home = await readFile(path.join(dist, 'index.html'), 'utf8');
    assert.ok(!/data-task=/.test(home) && !home.includes(' downloads</p>'));
    assert.match(home, /<select id="model-task"[^>]*>\s*<option value="">All tasks<\/option>\s*<\/select>/);
  });

  test('the 404 page carries the catalog names for its suggestions', async () => {
    const html = await readFile(path.join(dist, '404.html'), 'utf8');
    const names = JSON.parse(/<script id="model-names" type="application\/json">(.*?)<\/script>/s.exec(html)![1]);
    assert.deepEqual(names, [...new Set(entries.map((e) => e.name))]);
  });
});

describe('site build for the real catalog once facts are fetched', () => {
  test('the homepage stays under 60 KB gzip with every row’s facts', async () => {
    const { catalog, models } = await realCatalogWithFacts(REAL_CATALOG);
    const dist = await cachedSiteBuild({ catalog, store: EMPTY_STORE });
    const { total: { gzip: total } } = await pageBytes(dist);
    assert.ok(total < 60 * 1024, `homepage is ${total} bytes gzip`);
    const html = await readFile(path.join(dist, 'index.html'), 'utf8');
    const withFacts = models.filter((m) => m.task);
    assert.ok(withFacts.length > 90);
    for (const m of withFacts) assert.ok(html.includes(`<li data-name="${m.name.toLowerCase()}" data-task="${m.task}" data-library="${m.library}" data-downloads="${m.downloads}"`), m.name);
  });
});

describe('site build for a catalog of 1,000 models', () => {
  test('the homepage lists all of them in under 200 KB gzip, with their facts for filtering', async () => {
    const { catalog, models } = await generatedCatalog(1000);
    const dist = await cachedSiteBuild({ catalog, store: EMPTY_STORE });
    const { total: { gzip: total } } = await pageBytes(dist);
    assert.ok(total < 200 * 1024, `homepage is ${total} bytes gzip`);
    for (const key of ['name', 'size', 'downloads']) {
      const { total: { gzip } } = await pageBytes(dist, `sort--${key}.html`);
      assert.ok(gzip < 200 * 1024, `sort--${key} is ${gzip} bytes gzip`);
    }
    const html = await readFile(path.join(dist, 'index.html'), 'utf8');
    const rows = [...html.matchAll(/<li data-name="[^"]*"([^>]*)>/g)];
    assert.equal(rows.length, 1000);
    rows.forEach((row, i) => {
      const model = models[i];
      assert.equal(attrs(row[1], 'data-task')[0], model.task, `${model.name}: task`);
      assert.equal(attrs(row[1], 'data-downloads')[0], model.downloads?.toString(), `${model.name}: downloads`);
    });
  });
});

describe('site build with a built model and a custom registry host', () => {
  let dist: string;
  let fixture: { catalog: string; store: string };

  before(async () => {
    fixture = await builtFixture();
    dist = await cachedSiteBuild({ ...fixture, registryHost: FIXTURE_HOST, siteUrl: 'https://models.example.test' });
  });

  test('a built model shows its index digest, sizes, files and a line per file', async () => {
    const info = await readImageInfo(fixture.store, 'gpt2', 'latest');
    assert.ok(info, 'the fixture image is in the store');
    const html = await readFile(pageFile(dist, 'gpt2'), 'utf8');
    const ref = `${FIXTURE_HOST}/gpt2:latest`;
    assert.match(html, new RegExp(`data-digest[^>]*>${info.indexDigest}<`));
    assert.ok(html.includes(`data-compressed-size="${info.compressedSize}"`));
    assert.ok(html.includes(`data-uncompressed-size="${info.uncompressedSize}"`));
    const copies = attrs(html, 'data-copy');
    assert.ok(copies.includes(`COPY --link --from=${FIXTURE_HOST}/gpt2@${info.indexDigest} / .`), 'pinned by digest');
    assert.deepEqual(info.files.map((f) => f.path).sort(), Object.keys(FIXTURE_FILES).sort());
    for (const file of info.files) {
      assert.ok(html.includes(`data-size="${file.size}"`), `${file.path}: size`);
      // buildah reads the path it matched as a pattern again: `weights[0].bin` would be `weights0.bin`.
      if (file.path === 'weights[0].bin') {
        assert.ok(!copies.some((c) => c.includes('/weights[[]0].bin')), 'no line buildah would get wrong');
        const row = html.slice(html.indexOf('data-path="weights[0].bin"'));
        assert.match(row.slice(0, row.indexOf('</li>')), /data-unnamed title="No COPY line: buildah reads the path it matched as a pattern, and this name read so does not match itself"/);
        continue;
      }
      const line = /\s/.test(file.path) ? `COPY --link --from=${ref} ["/${file.path}", "."]` : `COPY --link --from=${ref} /${file.path} .`;
      assert.ok(copies.includes(line), `${file.path}: ${line}`);
    }
    const latest = html.slice(html.indexOf('id="tag-latest"'), html.indexOf('id="tag-v2"'));
    assert.ok(latest.includes(info.indexDigest) && !latest.includes('/path/to/file'), 'no placeholder once the file list is known');
    assert.ok(attrs(html, 'href').includes('https://models.example.test/gpt2'), 'canonical URL uses DEPOT_SITE_URL');
  });

  test('file sets: the lines a library loads, with their bytes against the whole image', async () => {
    const gpt2 = await readFile(pageFile(dist, 'gpt2'), 'utf8');
    const ref = `${FIXTURE_HOST}/gpt2:latest`;
    const set = ['config.json', 'merges.txt', 'model.safetensors', 'tokenizer.json', 'vocab.json'];
    assert.deepEqual(JSON.parse(attrs(gpt2, 'data-paths')[0]), set);
    assert.ok(attrs(gpt2, 'data-copy').includes(`COPY --link --from=${ref} ${set.map((p) => '/' + p).join(' ')} ./`));
    const bytes = set.reduce((sum, p) => sum + Buffer.byteLength(FIXTURE_FILES[p]), 0);
    assert.ok(gpt2.includes(`data-set-bytes="${bytes}"`));

    const sd = await readFile(pageFile(dist, 'runwayml/stable-diffusion-v1-5'), 'utf8');
    const sdRef = `${FIXTURE_HOST}/runwayml/stable-diffusion-v1-5:latest`;
    assert.ok(sd.includes('data-file-set="diffusers-fp16"'));
    assert.ok(attrs(sd, 'data-copy').includes(
      [
        `COPY --link --from=${sdRef} /model_index.json ./`,
        `COPY --link --from=${sdRef} /scheduler/scheduler_config.json ./scheduler/`,
        `COPY --link --from=${sdRef} /text_encoder/config.json /text_encoder/model.fp16.safetensors ./text_encoder/`,
        `COPY --link --from=${sdRef} /tokenizer/merges.txt /tokenizer/vocab.json ./tokenizer/`,
        `COPY --link --from=${sdRef} /unet/config.json /unet/diffusion_pytorch_model.fp16.safetensors ./unet/`,
        `COPY --link --from=${sdRef} /vae/config.json /vae/diffusion_pytorch_model.safetensors ./vae/`,
      ].join('\n'),
    ));
  });

  test('the file tree: folders as <details> with their bytes and a line per folder', async () => {
    const sd = await readFile(pageFile(dist, 'runwayml/stable-diffusion-v1-5'), 'utf8');
    const sdRef = `${FIXTURE_HOST}/runwayml/stable-diffusion-v1-5:latest`;
    const unet = Object.entries(FIXTURE_DIFFUSERS).filter(([p]) => p.startsWith('unet/'));
    const folder = sd.slice(sd.indexOf('data-folder="unet"'));
    assert.match(folder, /^data-folder="unet">\s*<details[^>]*>\s*<summary/);
    assert.ok(folder.includes(`data-size="${unet.reduce((sum, [, c]) => sum + Buffer.byteLength(c), 0)}"`), 'bytes under unet/');
    assert.ok(attrs(sd, 'data-copy').includes(`COPY --link --from=${sdRef} /unet ./unet/`));
    const gpt2 = await readFile(pageFile(dist, 'gpt2'), 'utf8');
    assert.ok(gpt2.includes('data-folder="deep/nested/dir"'), 'nested folders');
  });

  test('facts: task, library, license linked to the image’s license file, parameters, downloads, likes', async () => {
    const gpt2 = await readFile(pageFile(dist, 'gpt2'), 'utf8');
    const fact = (html: string, name: string) => decode(new RegExp(`data-fact="${name}">(.*?)</dd>`).exec(html)?.[1].replace(/<[^>]+>/g, '') ?? '');
    assert.equal(fact(gpt2, 'task'), 'text-generation');
    assert.equal(fact(gpt2, 'library'), 'transformers');
    assert.equal(fact(gpt2, 'license'), 'mit');
    assert.ok(attrs(gpt2, 'href').includes('https://huggingface.co/gpt2/blob/11c5a3d5811f50298f278a704980280950aedb10/LICENSE'));
    assert.equal(fact(gpt2, 'gated'), 'No');
    assert.equal(fact(gpt2, 'parameters'), '137M parameters');
    assert.equal(fact(gpt2, 'downloads'), '12M');
    assert.equal(fact(gpt2, 'likes'), '2.9K');
    // The facts file `models update` wrote from the Hub stand-in, as the weekly workflow does.
    const { updated, models } = JSON.parse(await readFile(path.join(path.dirname(fixture.catalog), 'facts.json'), 'utf8'));
    assert.ok(gpt2.includes(`as of ${updated.slice(0, 10)}`));
    const bytes = Object.values(FIXTURE_FILES).reduce((sum, content) => sum + Buffer.byteLength(content), 0);
    assert.deepEqual(models.gpt2, { sha: '11c5a3d5811f50298f278a704980280950aedb10', task: 'text-generation', library: 'transformers', license: 'mit', gated: false, parameters: 137_022_720, downloads: 12_345_678, likes: 2_890, files: Object.keys(FIXTURE_FILES).length, bytes });
    const sd = await readFile(pageFile(dist, 'runwayml/stable-diffusion-v1-5'), 'utf8');
    assert.equal(fact(sd, 'license'), 'creativeml-openrail-m', 'no license file in the image: the id alone');
    assert.ok(!attrs(sd, 'href').some((h) => h.includes('/blob/')));
    assert.ok(!sd.includes('data-fact="parameters"'), 'no parameter count where the Hub states none');
    const home = await readFile(path.join(dist, 'index.html'), 'utf8');
    assert.ok(home.includes(`<li data-name="gpt2" data-task="text-generation" data-library="transformers" data-downloads="12345678" data-bytes="${bytes}"`));
    assert.match(home, /<option value="text-to-image">text-to-image<\/option>/);
  });

  test('a tag that is not built still renders, on the same page', async () => {
    const html = await readFile(pageFile(dist, 'gpt2'), 'utf8');
    assert.ok(attrs(html, 'data-copy').includes(`COPY --link --from=${FIXTURE_HOST}/gpt2:v2 / .`));
    assert.ok(html.includes('id="tag-v2"'));
    const v2 = html.slice(html.indexOf('id="tag-v2"'));
    assert.ok(attrs(v2, 'data-copy').includes(`COPY --link --from=${FIXTURE_HOST}/gpt2:v2 /path/to/file .`));
  });

  test('every snippet uses the configured registry host', async () => {
    for (const page of ['index.html', 'gpt2.html', 'runwayml/stable-diffusion-v1-5.html']) {
      const html = await readFile(path.join(dist, page), 'utf8');
      const copies = attrs(html, 'data-copy');
      assert.ok(copies.length > 0);
      for (const copy of copies) assert.ok(copy.includes(FIXTURE_HOST), `${page}: ${copy}`);
      assert.ok(!/--from=depot\.ai\//.test(decode(html.replace(/<[^>]+>/g, ''))), `${page}: no depot.ai snippet left`);
    }
  });
});

describe('site build: facts of another revision, the homepage example image without config.json, names differing in case (issue 14)', () => {
  const SHA = 'a'.repeat(40);
  const FACTS_SHA = 'b'.repeat(40);
  // The example image (the first catalog entry: runwayml/stable-diffusion-v1-5 is not in the
  // catalog) has no config.json; its largest file no line names exactly (buildah's second reading).
  const FILES: Record<string, string> = { 'model.safetensors': 'w'.repeat(5_000), 'tokenizer.json': '{}\n', 'weights[0].bin': 'x'.repeat(9_000), 'weights0.bin': '0\n' };
  let dist: string;
  let stderr: string;

  before(async () => {
    const dir = await makeTempDir('depot-site-rt14');
    const source = path.join(dir, 'source');
    await mkdir(source, { recursive: true });
    for (const [file, content] of Object.entries(FILES)) await writeFile(path.join(source, file), content);
    const store = path.join(dir, 'store');
    // Published as :v1 only (no :latest): the homepage example must name that tag.
    const build = await depotAi(['build', 'acme/no-config', '--from', source, '--store', store, '--tag', 'v1', '--sha', SHA]);
    assert.equal(build.status, 0, build.stderr);
    const catalog = path.join(dir, 'models.yaml');
    await writeFile(catalog, `models:\n  - name: acme/no-config\n    sha: ${SHA}\n    tag: v1\n  - name: Foo/Bar\n    sha: ${'c'.repeat(40)}\n  - name: x/bar\n    sha: ${'d'.repeat(40)}\n`);
    // As `models update` shapes it, fetched when the Hub's head was another revision than the catalog pins.
    const facts = { 'acme/no-config': { sha: FACTS_SHA, task: 'text-generation', library: 'transformers', gated: false, downloads: 10, likes: 1, files: 4, bytes: 14_000 } };
    await writeFile(path.join(dir, 'facts.json'), JSON.stringify({ updated: '2026-11-23T04:00:00.000Z', models: facts }, null, 2) + '\n');
    const result = await buildSite({ catalog, store, registryHost: FIXTURE_HOST, outDir: path.join(dir, 'dist') });
    assert.equal(result.code, 0, result.stderr);
    dist = result.outDir;
    stderr = result.stderr;
  });

  test('facts fetched for another revision say which, next to the date', async () => {
    const html = await readFile(pageFile(dist, 'acme/no-config'), 'utf8');
    const text = decode(html.replace(/<[^>]+>/g, ''));
    assert.ok(text.includes('From Hugging Face as of 2026-11-23 (as of revision bbbbbbb…; the catalog pins aaaaaaa…).'), text);
    assert.ok(html.includes(`data-facts-revision="${FACTS_SHA}"`));
  });

  test("the homepage example names the entry's tag and a file the example image holds and a line names exactly", async () => {
    const text = decode((await readFile(path.join(dist, 'index.html'), 'utf8')).replace(/<[^>]+>/g, ''));
    assert.ok(text.includes(`COPY --link --from=${FIXTURE_HOST}/acme/no-config:v1 / .`), text);
    assert.ok(text.includes(`COPY --link --from=${FIXTURE_HOST}/acme/no-config:v1 /model.safetensors .`), 'the largest named file');
    assert.ok(!text.includes('/config.json .') && !text.includes('weights'), 'not a file the image lacks, nor one no line names');
  });

  test('Foo/Bar and x/bar share one owner-less page, at the first spelling', async () => {
    const files = await listFiles(dist);
    assert.ok(files.includes('Bar.html') && !files.includes('bar.html'), files.join(' '));
    const page = await readFile(path.join(dist, 'Bar.html'), 'utf8');
    assert.deepEqual(attrs(page, 'href').filter((h) => /^\/(Foo|x)\//.test(h)), ['/Foo/Bar', '/x/bar']);
    assert.doesNotMatch(stderr, /warn|error/i);
  });
});

describe('site build with a broken catalog', () => {
  test('fails with the same FILE:LINE:COL lines as the CLI and writes nothing', async () => {
    const dir = await makeTempDir('depot-site-broken');
    const catalog = path.join(dir, 'models.yaml');
    await writeFile(
      catalog,
      `models:
  - name: gpt2
    sha: 11c5a3d5811f50298f278a704980280950aedb10
    tagAs: latest
  - name: bad--name
    sha: NOTASHA
`,
    );
    const expected = await loadCatalog(catalog).then(
      () => assert.fail('the catalog should be invalid'),
      (error: unknown) => (error as CatalogError).message,
    );
    assert.match(expected, /models\.yaml:4:5: unknown key "tagAs": did you mean "tag"\?/);
    const outDir = path.join(dir, 'dist');
    const result = await buildSite({ catalog, store: EMPTY_STORE, outDir });
    assert.notEqual(result.code, 0);
    const lines = expected.split('\n');
    assert.ok(lines.length >= 3);
    for (const line of lines) assert.ok(result.stderr.includes(line + '\n'), `stderr has: ${line}\n--- stderr:\n${result.stderr}`);
    assert.doesNotMatch(result.stderr, /^\s+at /m, 'no stack trace');
    assert.deepEqual(await listFiles(outDir), [], 'nothing is written');

    // The CLI prints the same lines.
    const { spawnSync } = await import('node:child_process');
    const cli = spawnSync(process.execPath, [path.join(ROOT, 'bin/depot-ai.js'), 'models', 'check', catalog], { encoding: 'utf8' });
    assert.notEqual(cli.status, 0);
    for (const line of lines) assert.ok((cli.stdout + cli.stderr).includes(line), `CLI prints: ${line}`);
  });
});
