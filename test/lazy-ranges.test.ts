// Range requests as lazy pullers send them (the stargz snapshotter asks for several chunks at
// once): generated Range headers against a blob of the registry, each answer parsed back (single
// 206, multipart/byteranges, 416) and compared with a reference model built byte by byte.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { MAX_RANGES } from '../registry/range.ts';
import { assertRangeAnswer, expectedRuns, manyShortSpecs, prng, randomSpec } from './helpers/ranges.ts';
import { makeTestImage, raw, startTestRegistry, type RawResponse, type TestImage, type TestRegistry } from './helpers/registry.ts';

let image: TestImage;
let registry: TestRegistry;
let blob: Buffer;

before(async () => {
  image = await makeTestImage({ name: 'ranges/model', weights: 640 * 1024 });
  registry = await startTestRegistry({ store: image.store });
  blob = await readFile(path.join(image.store, 'ranges/model/blobs/sha256', image.layer.slice(7)));
});
after(async () => {
  await registry?.close();
});

const get = (headers: Record<string, string>, method = 'GET') => raw(registry.url, `/v2/${image.name}/blobs/${image.layer}`, { method, headers });

const assertAnswer = (res: RawResponse, runs: [number, number][], what: string) => assertRangeAnswer(res, blob, runs, what);

test('generated Range headers: 206, multipart/byteranges or 416 exactly as the byte model says', async () => {
  const size = blob.length;
  for (let seed = 1; seed <= 150; seed++) {
    const rand = prng(seed);
    const count = seed % 10 === 0 ? MAX_RANGES + 1 + rand(40) : 1 + rand(12);
    const specs = count > MAX_RANGES ? manyShortSpecs(rand, size, count) : Array.from({ length: count }, () => randomSpec(rand, size));
    const header = `bytes=${specs.join(rand(2) ? ',' : ', ')}`;
    assertAnswer(await get({ Range: header }), expectedRuns(specs, size), `seed ${seed}: ${header.slice(0, 200)}`);
  }
});

test('several ranges, unsatisfiable parts dropped: bytes=0-1,999999999999- is the first two bytes', async () => {
  const res = await get({ Range: 'bytes=0-1,999999999999-' });
  assert.equal(res.status, 206);
  assert.equal(res.headers['content-range'], `bytes 0-1/${blob.length}`);
  assert.ok(res.body.equals(blob.subarray(0, 2)));
});

test('overlapping and adjacent ranges are merged; a HEAD gets the same headers and no body', async () => {
  const header = { Range: 'bytes=10-19,0-4,5-9,100-199,150-250' };
  const res = await get(header);
  assertAnswer(res, [[0, 19], [100, 250]], 'merged');
  const head = await get(header, 'HEAD');
  assert.equal(head.status, 206);
  assert.equal(head.headers['content-length'], res.headers['content-length']);
  assert.match(String(head.headers['content-type']), /^multipart\/byteranges; boundary=/);
  assert.equal(head.body.length, 0);
});

test('If-Range that does not match: the whole blob, even for several ranges', async () => {
  const res = await get({ Range: 'bytes=0-1,10-11', 'If-Range': '"sha256:0000"' });
  assert.equal(res.status, 200);
  assert.ok(res.body.equals(blob));
});

test('a multipart answer with large parts streams (parts bigger than the in-memory read size)', async () => {
  const half = Math.floor(blob.length / 2);
  const res = await get({ Range: `bytes=0-${half - 10},${half + 10}-` });
  assertAnswer(res, [[0, half - 10], [half + 10, blob.length - 1]], 'large parts');
});
