// Range requests as lazy pullers send them (the stargz snapshotter asks for several chunks at
// once): generated Range headers against a blob of the registry, each answer parsed back (single
// 206, multipart/byteranges, 416) and compared with a reference model built byte by byte.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { MAX_RANGES } from '../registry/range.ts';
import { errorCode, makeTestImage, raw, startTestRegistry, type RawResponse, type TestImage, type TestRegistry } from './helpers/registry.ts';

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

/** A small seeded PRNG (mulberry32), so a failure names the seed that reproduces it. */
function prng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

/** A random byte-range-spec: closed, open-ended, suffix, past the end, or overlapping neighbours. */
function randomSpec(rand: (n: number) => number, size: number): string {
  const start = rand(size + 64);
  switch (rand(6)) {
    case 0:
      return `${start}-`;
    case 1:
      return `-${rand(size + 64)}`;
    case 2:
      return `${size + rand(1000)}-${size + 2000}`; // unsatisfiable: dropped
    default:
      return `${start}-${start + rand(rand(2) ? 64 : 8192)}`;
  }
}

/** What RFC 9110 says the client gets: the covered bytes as sorted runs (from a byte map). */
function expectedRuns(specs: string[], size: number): [number, number][] {
  const covered = new Uint8Array(size);
  for (const spec of specs) {
    const [a, b] = spec.split('-');
    if (a === '') covered.fill(1, Math.max(0, size - Number(b)), size);
    else if (Number(a) < size) covered.fill(1, Number(a), b === '' ? size : Math.min(size, Number(b) + 1));
  }
  const runs: [number, number][] = [];
  for (let i = 0; i < size; i++) {
    if (!covered[i]) continue;
    const start = i;
    while (i + 1 < size && covered[i + 1]) i++;
    runs.push([start, i]);
  }
  return runs;
}

function assertAnswer(res: RawResponse, runs: [number, number][], what: string): void {
  const size = blob.length;
  if (runs.length === 0) {
    assert.equal(res.status, 416, what);
    assert.equal(res.headers['content-range'], `bytes */${size}`, what);
    assert.equal(errorCode(res), 'RANGE_INVALID', what);
    return;
  }
  assert.equal(res.status, 206, what);
  assert.equal(Number(res.headers['content-length']), res.body.length, what);
  const want = runs.length > MAX_RANGES ? [[runs[0][0], runs[runs.length - 1][1]]] : runs;
  if (want.length === 1) {
    const [[start, end]] = want;
    assert.equal(res.headers['content-range'], `bytes ${start}-${end}/${size}`, what);
    assert.ok(res.body.equals(blob.subarray(start, end + 1)), `${what}: bytes`);
    return;
  }
  const parts = parseMultipart(String(res.headers['content-type']), res.body);
  assert.deepEqual(parts.map((p) => p.contentRange), want.map(([s, e]) => `bytes ${s}-${e}/${size}`), what);
  parts.forEach((p, i) => {
    assert.equal(p.contentType, 'application/octet-stream', what);
    assert.ok(p.body.equals(blob.subarray(want[i][0], want[i][1] + 1)), `${what}: part ${i} bytes`);
  });
}

interface Part {
  contentType: string;
  contentRange: string;
  body: Buffer;
}

/** Splits a multipart/byteranges body (RFC 9110 §14.6, RFC 2046 §5.1) into its parts. */
function parseMultipart(contentType: string, body: Buffer): Part[] {
  const m = /^multipart\/byteranges; boundary=([0-9A-Za-z'()+_,./:=?-]{1,70})$/.exec(contentType);
  assert.ok(m, `multipart content type: ${contentType}`);
  const delimiter = Buffer.from(`--${m[1]}`);
  const parts: Part[] = [];
  let at = body.indexOf(delimiter);
  assert.equal(at, 0, 'body starts with the first delimiter');
  for (;;) {
    at += delimiter.length;
    if (body.subarray(at, at + 4).toString() === '--\r\n') {
      assert.equal(at + 4, body.length, 'nothing after the close delimiter');
      return parts;
    }
    const headersEnd = body.indexOf('\r\n\r\n', at);
    const headers = Object.fromEntries(
      body.subarray(at + 2, headersEnd).toString().split('\r\n').map((line) => {
        const colon = line.indexOf(':');
        return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
      }),
    );
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), headersEnd + 4);
    assert.ok(next >= 0, 'every part ends with a delimiter');
    parts.push({ contentType: headers['content-type'], contentRange: headers['content-range'], body: body.subarray(headersEnd + 4, next) });
    at = next + 2;
  }
}

test('generated Range headers: 206, multipart/byteranges or 416 exactly as the byte model says', async () => {
  const size = blob.length;
  for (let seed = 1; seed <= 150; seed++) {
    const rand = prng(seed);
    const count = seed % 10 === 0 ? MAX_RANGES + 1 + rand(40) : 1 + rand(12);
    // Past the cap: many short ranges spread over the blob, so merging leaves more than MAX_RANGES.
    const short = () => {
      const start = rand(size - 10);
      return `${start}-${start + rand(3)}`;
    };
    const specs = Array.from({ length: count }, () => (count > MAX_RANGES ? short() : randomSpec(rand, size)));
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
