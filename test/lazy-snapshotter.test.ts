// Lazy pulling with the real consumer: containerd 1.6 with the stargz snapshotter (its default
// multi-range fetches; prefetch and background fetch off so every byte is one a read asked for)
// pulls a ~350 MB image from `serve`, and a read-only view of it is mounted and read. Counted from
// serve's request log: after rpull only the footer and TOC moved; config.json costs at most
// 64 KiB more; the 40 MiB file at most 1.5x its compressed size, never the whole layer; every file
// is byte-identical. The same through `serve --upstream` in front of the CNCF registry, and from
// the Cloudflare Worker (workerd under Miniflare, R2 on disk), counted by a proxy in front of it.
import assert from 'node:assert/strict';
import { readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { blobKey } from '../registry/r2-store.ts';
import { startContainerd } from './helpers/containerd.ts';
import { buildLazyImage, fileSha256, layerBytesSent, MEDIUM, SMALL, WEIGHTS, type LazyImage } from './helpers/lazy.ts';
import { startRecordingProxy, type RecordingProxy } from './helpers/proxy.ts';
import { pushLayout, startCncfRegistry, startTestRegistry, tempDir, type CncfRegistry, type TestRegistry } from './helpers/registry.ts';
import { startTestWorker, type TestWorker } from './helpers/worker.ts';
import { createHash } from 'node:crypto';

const REDIRECT_PROBE = 2; // the snapshotter first GETs bytes=0-1 to follow a redirect
const BLOB_CHUNK = 50_000; // the snapshotter fetches the blob in chunks on this grid (its chunk_size default)
const CONFIG_BUDGET = 64 * 1024;

let image: LazyImage;
before(async () => {
  image = await buildLazyImage();
});
after(async () => {
  if (image) await rm(image.store, { recursive: true, force: true });
});

/**
 * One lazy pull from `hostPort`, reading files in the order a build step would; `counter` (serve's
 * request log, or a proxy in front of the registry at `hostPort`) says what the layer cost.
 */
async function lazyPull(hostPort: string, counter: TestRegistry | RecordingProxy, options: { readWeights: boolean; beforeReads?: () => Promise<void> }): Promise<void> {
  const containerd = await startContainerd();
  try {
    const ref = `${hostPort}/${image.name}:${image.tag}`;
    const sent = () => layerBytesSent(counter, image.layer);
    const base = await sent();
    await containerd.rpull(ref);
    const afterPull = (await sent()) - base;
    // Footer + TOC as the snapshotter reads them: the blob chunks that hold them.
    const tail = image.layerSize - Math.floor((image.layerSize - image.tocAndFooter) / BLOB_CHUNK) * BLOB_CHUNK;
    assert.ok(afterPull > 0 && afterPull <= tail + REDIRECT_PROBE, `after rpull: ${afterPull} B of the layer (footer + TOC: ${image.tocAndFooter} B, in blob chunks ${tail} B)`);

    await options.beforeReads?.();
    const root = await containerd.mountView(image.diffId);
    const config = await readFile(path.join(root, 'config.json'));
    const afterConfig = (await sent()) - base;
    assert.ok(afterConfig - afterPull <= CONFIG_BUDGET, `config.json: ${afterConfig - afterPull} B more (budget ${CONFIG_BUDGET})`);
    assert.equal(createHash('sha256').update(config).digest('hex'), image.sha256['config.json']);
    // SOURCE_DATE_EPOCH=0: the TOC carries no modtime, and the snapshotter shows Go's zero time.
    assert.equal((await stat(path.join(root, 'config.json'))).mtime.toISOString(), '0001-01-01T00:00:00.000Z');

    assert.equal(await fileSha256(path.join(root, MEDIUM)), image.sha256[MEDIUM], `${MEDIUM} through the mount`);
    const afterMedium = (await sent()) - base;
    const medium = afterMedium - afterConfig;
    const budget = 1.5 * image.compressed[MEDIUM];
    assert.ok(medium <= budget, `${MEDIUM}: ${medium} B more, budget 1.5 x ${image.compressed[MEDIUM]} compressed`);
    assert.ok(afterMedium < image.layerSize / 2, `never the whole layer: ${afterMedium} of ${image.layerSize} B`);

    for (const file of SMALL) assert.equal(await fileSha256(path.join(root, file)), image.sha256[file], `${file} through the mount`);
    if (options.readWeights) {
      assert.equal(await fileSha256(path.join(root, WEIGHTS)), image.sha256[WEIGHTS], `${WEIGHTS} through the mount`);
      console.log(`# reading every file: ${(await sent()) - base} B for a ${image.layerSize} B layer`);
    }
    console.log(`# lazy pull: rpull ${afterPull} B, config.json +${afterConfig - afterPull} B, ${MEDIUM} +${medium} B (compressed ${image.compressed[MEDIUM]} B), layer ${image.layerSize} B`);
  } finally {
    await containerd.close();
  }
}

describe('from serve', () => {
  let registry: TestRegistry;
  before(async () => {
    registry = await startTestRegistry({ store: image.store });
  });
  after(async () => {
    await registry?.close();
  });
  // Before multi-range answers, half the runs fetched the whole layer for the 40 MiB file.
  for (const run of [1, 2, 3]) {
    test(`run ${run}: lazy, and every file byte-identical`, { timeout: 300_000 }, async () => {
      await lazyPull(registry.hostPort, registry, { readWeights: run === 3 });
    });
  }
});

describe('through serve --upstream in front of the CNCF registry', () => {
  let cncf: CncfRegistry;
  let mirror: TestRegistry;
  let cache: string;
  before(async () => {
    cncf = await startCncfRegistry();
    await pushLayout(image.store, image.name, image.tag, cncf.hostPort);
    cache = await tempDir('lazy-mirror');
    mirror = await startTestRegistry({ store: cache, upstream: cncf.url });
  });
  after(async () => {
    await mirror?.close();
    await cncf?.stop();
    if (cncf) await rm(cncf.dir, { recursive: true, force: true });
    if (cache) await rm(cache, { recursive: true, force: true });
  });
  // The first ranges of the uncached layer (footer, TOC, the first reads) are relayed from the
  // upstream's 206 answers, multipart ones with their Content-Type, while the mirror caches the
  // whole layer in the background; later reads come from the cache. Both are counted alike.
  test('lazy, and every file byte-identical', { timeout: 300_000 }, async () => {
    await lazyPull(mirror.hostPort, mirror, { readWeights: true });
  });
});

describe('from the Worker (workerd under Miniflare), filling R2 by pull-through from serve', () => {
  let origin: TestRegistry;
  let worker: TestWorker;
  let proxy: RecordingProxy;
  before(async () => {
    origin = await startTestRegistry({ store: image.store, log: false });
    worker = await startTestWorker({ bindings: { UPSTREAM: origin.url } });
    proxy = await startRecordingProxy(worker.url);
  });
  after(async () => {
    await proxy?.close();
    await worker?.close();
    await origin?.close();
  });
  // As the mirror above: rpull's reads miss R2 and start the fill of the whole layer (inside
  // workerd, verified, multipart); the file reads are then multi-range answers from R2 ranged gets.
  test('lazy, and the files read byte-identical', { timeout: 300_000 }, async () => {
    const filled = async () => {
      for (const deadline = Date.now() + 180_000; (await worker.bucket.head(blobKey(image.name, image.layer)))?.size !== image.layerSize; ) {
        if (Date.now() > deadline) throw new Error('the Worker did not fill R2 with the layer');
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    await lazyPull(proxy.hostPort, proxy, { readWeights: false, beforeReads: filled });
  });
});
