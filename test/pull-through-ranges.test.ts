// Range requests through the pull-through (`serve --upstream`) in front of the CNCF registry, for
// a blob it has cached and for one it has not (a fresh cache per request): generated range sets
// (single, several, overlapping, adjacent, past the end, more than MAX_RANGES), each answer parsed
// (206, multipart/byteranges, 416) and every part compared with the blob's bytes. A relayed
// upstream answer keeps what the client needs to read it (Content-Type with the multipart
// boundary, Content-Range, Content-Length) and is never labelled as verified content.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { assertRangeAnswer, expectedRuns, manyShortSpecs, parseMultipart, prng, randomSpec } from './helpers/byteranges.ts';
import {
  errorCode,
  eventually,
  makeTestImage,
  pushLayout,
  raw,
  startCncfRegistry,
  startTestRegistry,
  tempDir,
  tool,
  type CncfRegistry,
  type RawResponse,
  type TestImage,
  type TestRegistry,
} from './helpers/registry.ts';

for (const file of ['/usr/bin/docker-registry', '/usr/bin/skopeo']) tool(file);

let image: TestImage;
let cncf: CncfRegistry;
let warm: TestRegistry;
let blob: Buffer;

before(async () => {
  image = await makeTestImage({ name: 'ranges/upstream', weights: 640 * 1024 });
  blob = await readFile(path.join(image.store, image.name, 'blobs/sha256', image.layer.slice(7)));
  cncf = await startCncfRegistry();
  await pushLayout(image.store, image.name, image.tag, cncf.hostPort);
  warm = await startTestRegistry({ store: await tempDir('cache-warm'), upstream: cncf.url });
  const whole = await raw(warm.url, blobPath());
  assert.equal(whole.status, 200);
  assert.ok(whole.body.equals(blob), 'the warm cache holds the blob');
});
after(async () => {
  await warm?.close();
  await cncf?.stop();
});

const blobPath = () => `/v2/${image.name}/blobs/${image.layer}`;

const KINDS = ['single', 'several', 'overlapping', 'adjacent', 'past the end', 'more than 64', 'random'] as const;

/** A range set of one kind, from the seeded generator. */
function rangeSet(kind: (typeof KINDS)[number], rand: (n: number) => number, size: number): string[] {
  const at = () => rand(size - 20_000);
  switch (kind) {
    case 'single':
      return [randomSpec(rand, size)];
    case 'several':
      return Array.from({ length: 2 + rand(8) }, () => {
        const start = at();
        return `${start}-${start + rand(5000)}`;
      });
    case 'overlapping': {
      const start = at();
      return [`${start + 100}-${start + 9000}`, `${start}-${start + 500}`, `${start + 400}-${start + 600}`, `${at()}-${size + 10}`];
    }
    case 'adjacent': {
      const start = at();
      return [`${start}-${start + 99}`, `${start + 200}-${start + 299}`, `${start + 100}-${start + 199}`, `${start + 300}-`];
    }
    case 'past the end': {
      const start = at();
      return rand(3) === 0 ? [`${size}-`, `${size + rand(99)}-${size + 100}`] : [`${start}-${start + 10}`, `${size + rand(1000)}-`];
    }
    case 'more than 64':
      return manyShortSpecs(rand, size);
    case 'random':
      return Array.from({ length: 1 + rand(12) }, () => randomSpec(rand, size));
  }
}

/** The answer covers exactly `runs` of the blob, whatever its framing (an upstream may not merge). */
function assertCovers(res: RawResponse, runs: [number, number][], what: string): void {
  if (res.status !== 206 || !String(res.headers['content-type']).startsWith('multipart/')) return assertRangeAnswer(res, blob, runs, what);
  const covered = new Uint8Array(blob.length);
  for (const part of parseMultipart(String(res.headers['content-type']), res.body)) {
    const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(part.contentRange);
    assert.ok(m && Number(m[3]) === blob.length, `${what}: part range ${part.contentRange}`);
    assert.ok(part.body.equals(blob.subarray(Number(m[1]), Number(m[2]) + 1)), `${what}: part ${part.contentRange} bytes`);
    covered.fill(1, Number(m[1]), Number(m[2]) + 1);
  }
  assert.deepEqual(expectedRuns(runs.map(([s, e]) => `${s}-${e}`), blob.length), runs, what);
  for (let i = 0, r = 0; i < blob.length; i++) {
    while (r < runs.length && runs[r][1] < i) r++;
    assert.equal(covered[i], r < runs.length && runs[r][0] <= i ? 1 : 0, `${what}: byte ${i} covered as asked`);
  }
}

/** Verified (from the cache): ETag and immutable. Relayed from the upstream: neither, no-store. */
function assertLabels(res: RawResponse, what: string): 'verified' | 'relayed' {
  if (res.status !== 206 && res.status !== 200) return 'verified';
  if (res.headers.etag === undefined) {
    assert.equal(res.headers['cache-control'], 'no-store', `${what}: unverified bytes are not cacheable`);
    assert.equal(res.headers['last-modified'], undefined, what);
    return 'relayed';
  }
  assert.equal(res.headers.etag, `"${image.layer}"`, what);
  return 'verified';
}

test('cached blob: generated range sets answered by the one range rule, every part the blob bytes', async () => {
  for (let seed = 1; seed <= 42; seed++) {
    const rand = prng(seed);
    const kind = KINDS[seed % KINDS.length];
    const specs = rangeSet(kind, rand, blob.length);
    const header = `bytes=${specs.join(rand(2) ? ',' : ', ')}`;
    const what = `cached, ${kind}, seed ${seed}: ${header.slice(0, 160)}`;
    const res = await raw(warm.url, blobPath(), { headers: { Range: header } });
    assertRangeAnswer(res, blob, expectedRuns(specs, blob.length), what);
    assert.equal(assertLabels(res, what), 'verified');
  }
});

test('uncached blob: the upstream 206 is relayed with its multipart Content-Type and parses to the blob bytes', async () => {
  const cachedFile = (cache: string) => path.join(cache, image.name, 'blobs/sha256', image.layer.slice(7));
  let relayed = 0;
  for (let seed = 1; seed <= 28; seed++) {
    const rand = prng(1000 + seed);
    const kind = KINDS[seed % KINDS.length];
    const specs = rangeSet(kind, rand, blob.length);
    const header = `bytes=${specs.join(rand(2) ? ',' : ', ')}`;
    const what = `uncached, ${kind}, seed ${seed}: ${header.slice(0, 160)}`;
    const cache = await tempDir('cache-cold');
    const registry = await startTestRegistry({ store: cache, upstream: cncf.url });
    try {
      const res = await raw(registry.url, blobPath(), { headers: { Range: header } });
      const runs = expectedRuns(specs, blob.length);
      const suffix = specs.some((s) => s.startsWith('-'));
      // Without a suffix spec the upstream is asked for the merged set, so the answer is exactly
      // the cached one's; with one (it needs the size), any framing that covers the same bytes.
      if (suffix) assertCovers(res, runs, what);
      else assertRangeAnswer(res, blob, runs, what);
      const label = assertLabels(res, what);
      // One range covering half the blob or more joins the fill and is served verified.
      const span = /^bytes (\d+)-(\d+)\//.exec(String(res.headers['content-range']));
      const most = span !== null && Number(span[2]) - Number(span[1]) + 1 >= blob.length / 2;
      if (!suffix && runs.length > 0) assert.equal(label, most ? 'verified' : 'relayed', `${what}: ${most ? 'most of the blob: served from the verified fill' : "answered from the upstream's 206, not a whole-blob fetch"}`);
      if (label === 'relayed') {
        relayed++;
        // The whole blob is cached in the background, verified.
        await eventually(() => existsSync(cachedFile(cache)), `${what}: the blob cached`);
        assert.ok((await readFile(cachedFile(cache))).equals(blob), what);
      }
    } finally {
      await registry.close();
      await rm(cache, { recursive: true, force: true });
    }
  }
  assert.ok(relayed >= 12, `most answers relayed (${relayed})`);
});

test('uncached blob, malformed or unsatisfiable set: 416 RANGE_INVALID with the size, as for a cached blob', async () => {
  for (const header of ['bytes=10-5', 'bytes=0-1,9-3', `bytes=${blob.length}-`, 'bytes=-0']) {
    const cache = await tempDir('cache-cold');
    const registry = await startTestRegistry({ store: cache, upstream: cncf.url });
    try {
      const cold = await raw(registry.url, blobPath(), { headers: { Range: header } });
      const cached = await raw(warm.url, blobPath(), { headers: { Range: header } });
      for (const res of [cold, cached]) {
        assert.equal(res.status, 416, header);
        assert.equal(res.headers['content-range'], `bytes */${blob.length}`, header);
        assert.equal(errorCode(res), 'RANGE_INVALID', header);
      }
    } finally {
      await registry.close();
      await rm(cache, { recursive: true, force: true });
    }
  }
});
