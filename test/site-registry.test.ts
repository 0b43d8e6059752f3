// The site reads image data from a registry (as the publish workflow does) just as from the store.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { readImageInfo, readRemoteImageInfo } from '../builder/image-info.ts';
import { pushLayout, startCncfRegistry, type CncfRegistry } from './helpers/registry.ts';
import { buildSite, makeTempDir } from './helpers/site.ts';
import { builtFixture, EMPTY_STORE, FIXTURE_HOST } from './helpers/site-fixtures.ts';

let cncf: CncfRegistry;
let fixture: { catalog: string; store: string };

before(async () => {
  fixture = await builtFixture();
  cncf = await startCncfRegistry();
  await pushLayout(fixture.store, 'gpt2', 'latest', cncf.hostPort);
});
after(() => cncf.stop());

test('image data read from the CNCF registry equals the store', async () => {
  const fromStore = await readImageInfo(fixture.store, 'gpt2', 'latest');
  const fromRegistry = await readRemoteImageInfo(cncf.url, 'gpt2', 'latest');
  assert.ok(fromStore && fromStore.files.length > 0);
  assert.deepEqual(fromRegistry, fromStore);
  assert.equal(await readRemoteImageInfo(cncf.url, 'gpt2', 'v2'), undefined, 'a tag the registry lacks is "not built"');
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
  assert.equal(fromRegistry, fromStore);
});
