// Range requests as lazy pullers send them: generated Range headers, the bytes RFC 9110 says
// they cover (a byte map, independent of registry/range.ts), and a multipart/byteranges parser,
// so an answer can be compared part by part with the blob.
import assert from 'node:assert/strict';
import { MAX_RANGES } from '../../registry/range.ts';
import { errorCode, type RawResponse } from './registry.ts';

/** A small seeded PRNG (mulberry32), so a failure names the seed that reproduces it. */
export function prng(seed: number): (n: number) => number {
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
export function randomSpec(rand: (n: number) => number, size: number): string {
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

/** More than MAX_RANGES short ranges spread over the blob, so merging leaves more than the cap. */
export function manyShortSpecs(rand: (n: number) => number, size: number, count = MAX_RANGES + 1 + rand(40)): string[] {
  return Array.from({ length: count }, () => {
    const start = rand(size - 10);
    return `${start}-${start + rand(3)}`;
  });
}

/** What RFC 9110 says the client gets: the covered bytes as sorted runs (from a byte map). */
export function expectedRuns(specs: string[], size: number): [number, number][] {
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

/**
 * Asserts that `res` answers `runs` of `blob` as registry/range.ts's rule says: 416 when nothing
 * is covered; past MAX_RANGES one covering span; one run a 206 with its Content-Range; several a
 * multipart/byteranges with one part per run, each holding the blob's bytes.
 */
export function assertRangeAnswer(res: RawResponse, blob: Buffer, runs: [number, number][], what: string): void {
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

export interface Part {
  contentType: string;
  contentRange: string;
  body: Buffer;
}

/** Splits a multipart/byteranges body (RFC 9110 §14.6, RFC 2046 §5.1) into its parts. */
export function parseMultipart(contentType: string, body: Buffer): Part[] {
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
