// The site reads image data from a registry (as the publish workflow does) just as from the store,
// and offers no line for a tag whose image is not the catalog entry's, nor a revision tag that is
// missing or holds another image (red team, issue 14), and builds every page in bounded time when
// the registry trickles its answers (issue 14, F8), its entries read side by side (F-A).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { readImageInfo, readRemoteImageInfo, readRemoteTagDigest, readTagDigest } from '../builder/image-info.ts';
import { startLyingServer } from './helpers/lying-server.ts';
import { pushLayout, startCncfRegistry, type CncfRegistry } from './helpers/registry.ts';
import { buildSite, makeTempDir } from './helpers/site.ts';
import { builtFixture, EMPTY_STORE, FIXTURE_CATALOG_TEXT, FIXTURE_HOST } from './helpers/site-fixtures.ts';

const GPT2_SHA = '11c5a3d5811f50298f278a704980280950aedb10';
const SD = 'runwayml/stable-diffusion-v1-5';

function decode(text: string): string {
  return text.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&#(\d+);/g, (_, n) => String.fromCodePoint(Number(n))).replace(/&amp;/g, '&');
}

/** Attribute values of `attr` in `html`, decoded. */
function attrs(html: string, attr: string): string[] {
  return [...html.matchAll(new RegExp(`\\s${attr}="([^"]*)"`, 'g'))].map((m) => decode(m[1]));
}

let cncf: CncfRegistry;
let fixture: { catalog: string; store: string };

before(async () => {
  fixture = await builtFixture();
  cncf = await startCncfRegistry();
  await pushLayout(fixture.store, 'gpt2', 'latest', cncf.hostPort);
  await pushLayout(fixture.store, 'gpt2', GPT2_SHA, cncf.hostPort);
});
after(() => cncf.stop());

test('image data read from the CNCF registry equals the store', async () => {
  const fromStore = await readImageInfo(fixture.store, 'gpt2', 'latest');
  const fromRegistry = await readRemoteImageInfo(cncf.url, 'gpt2', 'latest');
  assert.ok(fromStore && fromStore.files.length > 0);
  assert.deepEqual(fromRegistry, fromStore);
  assert.equal(await readRemoteImageInfo(cncf.url, 'gpt2', 'v2'), undefined, 'a tag the registry lacks is "not built"');
  assert.equal(await readRemoteTagDigest(cncf.url, 'gpt2', GPT2_SHA), fromStore.indexDigest, 'the revision tag, as pushed');
  assert.equal(await readTagDigest(fixture.store, 'gpt2', GPT2_SHA), fromStore.indexDigest, 'the store\'s revision tag');
  assert.equal(await readRemoteTagDigest(cncf.url, 'gpt2', 'v2'), undefined);
});

test('the site built from the registry shows the same digests and file lists as from the store', async () => {
  const build = async (store: string, registryUrl?: string) => {
    const outDir = await makeTempDir('depot-site-registry-');
    const saved = process.env.DEPOT_REGISTRY_URL;
    if (registryUrl) process.env.DEPOT_REGISTRY_URL = registryUrl;
    try {
      const result = await buildSite({ catalog: fixture.catalog, store, registryHost: FIXTURE_HOST, outDir });
      assert.equal(result.code, 0, result.stderr);
    } finally {
      if (saved === undefined) delete process.env.DEPOT_REGISTRY_URL;
      else process.env.DEPOT_REGISTRY_URL = saved;
    }
    return readFile(path.join(outDir, 'gpt2.html'), 'utf8');
  };
  const fromStore = await build(fixture.store);
  const fromRegistry = await build(EMPTY_STORE, cncf.url);
  const digest = (await readImageInfo(fixture.store, 'gpt2', 'latest'))!.indexDigest;
  assert.ok(fromRegistry.includes(digest), 'the page shows the index digest');
  assert.ok(fromRegistry.includes('model.safetensors'), 'the page lists the files');
  assert.ok(attrs(fromRegistry, 'data-copy').includes(`COPY --link --from=${FIXTURE_HOST}/gpt2:${GPT2_SHA} / .`), 'the revision tag holds the same index: its line is offered');
  assert.equal(fromRegistry, fromStore);
});

test('a registry whose tags hold other images: no COPY line for them on the homepage or the model page', async () => {
  // Under the prefix lies/: gpt2:latest honest, but gpt2:v2 and gpt2's revision tag hold the
  // diffusers image, and the diffusers image's own revision tag is missing.
  const target = `${cncf.hostPort}/lies`;
  await pushLayout(fixture.store, 'gpt2', 'latest', target);
  await pushLayout(fixture.store, SD, 'latest', target, `gpt2:${GPT2_SHA}`);
  await pushLayout(fixture.store, SD, 'latest', target, 'gpt2:v2');
  await pushLayout(fixture.store, SD, 'latest', target);
  const outDir = await makeTempDir('depot-site-lies-');
  const result = await buildSite({ catalog: fixture.catalog, store: EMPTY_STORE, registryHost: FIXTURE_HOST, registryUrl: `${cncf.url}/lies`, outDir });
  assert.equal(result.code, 0, result.stderr);
  const gpt2 = (await readImageInfo(fixture.store, 'gpt2', 'latest'))!.indexDigest;
  const sd = (await readImageInfo(fixture.store, SD, 'latest'))!.indexDigest;

  // The homepage: the gpt2:v2 row warns instead of offering a line; the honest rows keep theirs.
  const home = await readFile(path.join(outDir, 'index.html'), 'utf8');
  const rows = [...home.matchAll(/<li data-name="[^"]*"[^>]*>(.*?)<\/li>/gs)].map((m) => m[1]);
  assert.equal(rows.length, 3);
  assert.deepEqual(attrs(rows[0], 'data-copy'), [`COPY --link --from=${FIXTURE_HOST}/gpt2:latest / .`]);
  assert.deepEqual(attrs(rows[1], 'data-copy'), [], 'gpt2:v2 holds another model\'s image: no copy button');
  assert.match(attrs(rows[1], 'title')[0], new RegExp(`^Not offered: gpt2:v2 is labelled "https://huggingface.co/${SD}"`));
  assert.ok(rows[1].includes('data-mismatch'));
  assert.deepEqual(attrs(rows[2], 'data-copy'), [`COPY --link --from=${FIXTURE_HOST}/${SD}:latest / .`]);

  // gpt2's page: no line at all for v2, and the revision tag (on the diffusers image) not offered.
  const page = await readFile(path.join(outDir, 'gpt2.html'), 'utf8');
  const v2 = page.slice(page.indexOf('id="tag-v2"'));
  const latest = page.slice(0, page.indexOf('id="tag-v2"'));
  assert.ok(page.indexOf('id="tag-v2"') > 0);
  assert.deepEqual(attrs(v2, 'data-copy').filter((c) => c.startsWith('COPY')), [], 'the v2 section offers no COPY line');
  assert.ok(!attrs(page, 'data-copy').includes(`COPY --link --from=${FIXTURE_HOST}/gpt2:${GPT2_SHA} / .`), 'no revision line');
  assert.ok(decode(latest).includes(`Not offered: gpt2:${GPT2_SHA} holds ${sd}, not ${gpt2}.`));
  assert.ok(attrs(latest, 'data-copy').includes(`COPY --link --from=${FIXTURE_HOST}/gpt2:latest / .`), 'the honest tag keeps its line');

  // The diffusers page: its revision tag is missing.
  const sdPage = decode(await readFile(path.join(outDir, `${SD}.html`), 'utf8'));
  assert.ok(sdPage.includes(`Not offered: ${SD}:1d0c4ebf6ff58a5caecab40fa1406526bca4b5b9 is not there yet.`));
  assert.ok(!sdPage.includes(`--from=${FIXTURE_HOST}/${SD}:1d0c4ebf6ff58a5caecab40fa1406526bca4b5b9`));
});

test('a registry that trickles its answers: the entries are read at most 8 at a time, all ahead of their pages; every page built without image data, one warning line per entry', { timeout: 120_000 }, async () => {
  // Headers at once, then one byte of body every 300 ms: never idle long enough for the idle timeout.
  const timers = new Set<NodeJS.Timeout>();
  let open = 0;
  let mostOpen = 0;
  const events: ('start' | 'end')[] = [];
  const liar = await startLyingServer((_req, res) => {
    mostOpen = Math.max(mostOpen, ++open);
    events.push('start');
    res.writeHead(200, { 'content-type': 'application/vnd.oci.image.index.v1+json', 'content-length': '100000' });
    const timer = setInterval(() => res.write('{'), 300);
    timers.add(timer);
    res.on('close', () => (open--, events.push('end'), clearInterval(timer), timers.delete(timer)));
  });
  // The fixture's three entries and seven more (ten pages' worth): read one after another (as Astro
  // renders the pages) they would take 10 x 2 s; eight at a time, about 2 x 2 s.
  const extra = Array.from({ length: 7 }, (_, i) => `rt/trickle-${i}`);
  const dir = await makeTempDir('depot-site-trickle-catalog-');
  const catalog = path.join(dir, 'models.yaml');
  await writeFile(catalog, FIXTURE_CATALOG_TEXT + extra.map((name) => `  - name: ${name}\n    sha: ${GPT2_SHA}\n    tag: latest\n`).join(''));
  const saved = process.env.DEPOT_SITE_REGISTRY_DEADLINE_S;
  process.env.DEPOT_SITE_REGISTRY_DEADLINE_S = '2';
  try {
    const outDir = await makeTempDir('depot-site-trickle-');
    const result = await buildSite({ catalog, store: fixture.store, registryHost: FIXTURE_HOST, registryUrl: liar.url, outDir });
    assert.equal(result.code, 0, result.stderr);
    const warnings = (result.stderr + result.stdout).split('\n').filter((l) => l.includes('no image data shown'));
    const late = "no image data shown: the registry's answers took more than 2 s in all (DEPOT_SITE_REGISTRY_DEADLINE_S)";
    assert.deepEqual(warnings.map((l) => l.replace(/^.*?site: /, 'site: ')).sort(), ['gpt2', 'gpt2', SD, ...extra].map((name) => `site: ${name}: ${late}`).sort());
    // The first read of the build started eight at once, not one page's after another's.
    assert.deepEqual(events.slice(0, 8), Array(8).fill('start'), `the first eight reads start before any ends (${events.join(' ')})`);
    assert.equal(mostOpen, 8, 'at most 8 reads in flight');
    const manifests = liar.seen.filter((s) => s.url.includes('/manifests/'));
    assert.equal(manifests.length, 10, 'one manifest read per entry, shared by the homepage and the pages');
    const page = await readFile(path.join(outDir, 'gpt2.html'), 'utf8');
    const digest = (await readImageInfo(fixture.store, 'gpt2', 'latest'))!.indexDigest;
    assert.ok(!page.includes(digest) && !page.includes('model.safetensors'), 'no image data on the page');
    for (const name of extra) assert.ok(existsSync(path.join(outDir, `${name}.html`)), `${name}'s page is built`);
  } finally {
    if (saved === undefined) delete process.env.DEPOT_SITE_REGISTRY_DEADLINE_S;
    else process.env.DEPOT_SITE_REGISTRY_DEADLINE_S = saved;
    for (const timer of timers) clearInterval(timer);
    await liar.close();
  }
});
