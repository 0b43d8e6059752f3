// Range requests as lazy pullers send them (the stargz snapshotter asks for several chunks at
// once): generated Range headers, a reference model of what RFC 9110 §14 says the client gets,
// and a parser for multipart/byteranges answers (§14.6), shared by every runtime's conformance.
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

/**
 * What one generated request may cover of a blob: open-ended and suffix specs reach back at most
 * this far from the end, and the short specs past the cap lie within one window this long, so a
 * request costs the same on a 640 KiB blob as on a 20 MiB one (closed specs still land anywhere).
 */
const WINDOW = 640 * 1024;

/** A random byte-range-spec: closed, open-ended, suffix, past the end, or overlapping neighbours. */
export function randomSpec(rand: (n: number) => number, size: number): string {
  const reach = Math.min(size, WINDOW) + 64;
  switch (rand(6)) {
    case 0:
      return `${size + 64 - reach + rand(reach)}-`;
    case 1:
      return `-${rand(reach)}`;
    case 2:
      return `${size + rand(1000)}-${size + 2000}`; // unsatisfiable: dropped
    default: {
      const start = rand(size + 64);
      return `${start}-${start + rand(rand(2) ? 64 : 8192)}`;
    }
  }
}

/** `count` (default: more than MAX_RANGES) short specs within one window of the blob, so merging leaves more than the cap. */
export function manyShortSpecs(rand: (n: number) => number, size: number, count = MAX_RANGES + 1 + rand(40)): string[] {
  const window = Math.min(size, WINDOW);
  const base = rand(size - window + 1);
  return Array.from({ length: count }, () => {
    const start = base + rand(window - 10);
    return `${start}-${start + rand(3)}`;
  });
}

/**
 * The byte-range-specs of generated request number `seed` against a `size`-byte blob: 1 to 12
 * mixed specs, or (every tenth seed) more than MAX_RANGES short ones (manyShortSpecs).
 */
export function generatedSpecs(seed: number, size: number): string[] {
  const rand = prng(seed);
  if (seed % 10 === 0) return manyShortSpecs(rand, size);
  return Array.from({ length: 1 + rand(12) }, () => randomSpec(rand, size));
}

/** The Range header for `specs`, with or without spaces after the commas (both are valid). */
export const rangeHeader = (specs: string[], seed: number) => `bytes=${specs.join(seed % 2 ? ',' : ', ')}`;

/**
 * What RFC 9110 says the client gets for `specs`: the covered bytes as sorted inclusive runs.
 * A model independent of registry/range.ts: the blob is cut at every spec's edges and each piece
 * marked covered or not (a byte map, compressed to the pieces), then covered neighbours joined.
 */
export function expectedRuns(specs: string[], size: number): [number, number][] {
  const spans: [number, number][] = []; // [start, end) within the blob
  for (const spec of specs) {
    const [a, b] = spec.split('-');
    if (a === '') spans.push([Math.max(0, size - Number(b)), size]);
    else if (Number(a) < size) spans.push([Number(a), b === '' ? size : Math.min(size, Number(b) + 1)]);
  }
  const cuts = [...new Set([0, size, ...spans.flat()])].sort((x, y) => x - y);
  const runs: [number, number][] = [];
  for (let i = 0; i + 1 < cuts.length; i++) {
    const [from, to] = [cuts[i], cuts[i + 1]];
    if (!spans.some(([s, e]) => s <= from && to <= e)) continue;
    const last = runs[runs.length - 1];
    if (last && last[1] === from - 1) last[1] = to - 1;
    else runs.push([from, to - 1]);
  }
  return runs;
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

/**
 * `res` is the answer RFC 9110 gives for `runs` of `blob`: 416 RANGE_INVALID with an unsatisfied
 * Content-Range (`bytes *` + `/size`) when there are none; one range: 206 + Content-Range; several:
 * 206 multipart/byteranges with those parts; more than MAX_RANGES: one range covering them all.
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
