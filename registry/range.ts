// HTTP byte ranges (RFC 9110 §14), the one rule every blob answer follows:
// - no Range header, or another unit than `bytes`: 200 with the whole blob;
// - a malformed `bytes=` set (a spec that is not `N-M`, `N-` or `-N`, or has M < N): 416;
// - specs past the end (`N-` with N >= size, `-0`) are dropped (§14.1.1); none left: 416;
// - the rest are sorted and overlapping or adjacent ones merged; one left: 206 + Content-Range;
//   several: 206 multipart/byteranges (§14.6), as Go's http.ServeContent answers (the stargz
//   snapshotter asks for several chunks at once);
// - more than MAX_RANGES after merging: one range covering them all (206), so a lazy puller
//   still gets no more than the span it asked about, and the server never builds a huge
//   multipart answer.

/** Inclusive byte offsets. */
export interface ByteRange {
  start: number;
  end: number;
}

/** One byte range as the client asked it, before the blob's size is known: from `offset` (`length` bytes, or to the end), or the last `suffix` bytes. */
export type RangeSpec = { offset: number; length?: number } | { suffix: number };

/** Past this many (merged) ranges, the answer is one range covering them all. */
export const MAX_RANGES = 64;

export type RangeResult =
  | { kind: 'none' } // no Range header or another unit: serve everything
  | { kind: 'ranges'; ranges: ByteRange[] } // sorted, disjoint, non-adjacent, 1..MAX_RANGES
  | { kind: 'unsatisfiable' };

const SPEC = /^(\d*)-(\d*)$/;

/**
 * The one byte range a Range header asks for, before the blob's size is known (a store then
 * reads it in one request: RegistryStore.readBlob); undefined for anything parseRange must decide
 * with the size: several specs, a malformed one, `-0`, or M < N. Another unit than `bytes`, or
 * no header: null, the whole blob.
 */
export function singleRangeSpec(header: string | undefined | null): RangeSpec | null | undefined {
  if (!header) return null;
  const eq = header.indexOf('=');
  if (eq < 0) return undefined;
  if (header.slice(0, eq).trim().toLowerCase() !== 'bytes') return null;
  const m = SPEC.exec(header.slice(eq + 1).trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  const [first, last] = [Number(m[1]), Number(m[2])];
  if (m[1] === '') return Number.isSafeInteger(last) && last > 0 ? { suffix: last } : undefined;
  if (!Number.isSafeInteger(first)) return undefined;
  if (m[2] === '') return { offset: first };
  return Number.isSafeInteger(last) && last >= first ? { offset: first, length: last - first + 1 } : undefined;
}

/** `spec` against a blob of `size` bytes, as parseRange resolves it; undefined when it starts at or past the end. */
export function resolveSpec(spec: RangeSpec, size: number): ByteRange | undefined {
  if ('suffix' in spec) return size === 0 ? undefined : { start: Math.max(0, size - spec.suffix), end: size - 1 };
  if (spec.offset >= size) return undefined;
  return { start: spec.offset, end: spec.length === undefined ? size - 1 : Math.min(spec.offset + spec.length - 1, size - 1) };
}

/** Parses a Range header against a blob of `size` bytes (see the rule above). */
export function parseRange(header: string | undefined | null, size: number): RangeResult {
  if (!header) return { kind: 'none' };
  const eq = header.indexOf('=');
  if (eq < 0) return { kind: 'unsatisfiable' };
  if (header.slice(0, eq).trim().toLowerCase() !== 'bytes') return { kind: 'none' };
  const parsed: ByteRange[] = [];
  for (const raw of header.slice(eq + 1).split(',')) {
    const spec = raw.trim();
    if (spec === '') continue; // RFC 9110 §5.6.1: empty list elements are ignored
    const m = SPEC.exec(spec);
    if (!m || (m[1] === '' && m[2] === '')) return { kind: 'unsatisfiable' };
    if (m[1] === '') {
      // suffix range: the last N bytes
      const n = Number(m[2]);
      if (!Number.isSafeInteger(n)) return { kind: 'unsatisfiable' };
      if (n === 0 || size === 0) continue;
      parsed.push({ start: Math.max(0, size - n), end: size - 1 });
      continue;
    }
    const start = Number(m[1]);
    const end = m[2] === '' ? size - 1 : Number(m[2]);
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end)) return { kind: 'unsatisfiable' };
    if (start >= size) continue;
    if (end < start) return { kind: 'unsatisfiable' };
    parsed.push({ start, end: Math.min(end, size - 1) });
  }
  if (parsed.length === 0) return { kind: 'unsatisfiable' };
  const ranges = mergeRanges(parsed);
  if (ranges.length > MAX_RANGES) return { kind: 'ranges', ranges: [{ start: ranges[0].start, end: ranges[ranges.length - 1].end }] };
  return { kind: 'ranges', ranges };
}

/** Sorted by start, with overlapping or adjacent ranges joined. */
function mergeRanges(ranges: ByteRange[]): ByteRange[] {
  const sorted = [...ranges].sort((a, b) => a.start - b.start);
  const out: ByteRange[] = [{ ...sorted[0] }];
  for (const r of sorted.slice(1)) {
    const last = out[out.length - 1];
    if (r.start <= last.end + 1) last.end = Math.max(last.end, r.end);
    else out.push({ ...r });
  }
  return out;
}

/** A multipart/byteranges answer (RFC 9110 §14.6): its Content-Type, Content-Length and framing. */
export interface Multipart {
  contentType: string;
  length: number;
  /** Each part's delimiter and headers, then its range's bytes; `tail` closes the body. */
  parts: { head: Uint8Array; range: ByteRange }[];
  tail: Uint8Array;
}

/**
 * Lays out `ranges` (sorted, disjoint) of a `size`-byte blob as multipart/byteranges, parts typed
 * `application/octet-stream`, in the framing Go's mime/multipart writes (CRLF before each
 * delimiter, so a part's bytes end right before it).
 */
export function multipartByteranges(ranges: ByteRange[], size: number): Multipart {
  const boundary = Array.from(crypto.getRandomValues(new Uint8Array(15)), (b) => b.toString(16).padStart(2, '0')).join('');
  const encoder = new TextEncoder();
  const parts = ranges.map((range, i) => ({
    head: encoder.encode(`${i === 0 ? '' : '\r\n'}--${boundary}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes ${range.start}-${range.end}/${size}\r\n\r\n`),
    range,
  }));
  const tail = encoder.encode(`\r\n--${boundary}--\r\n`);
  const length = parts.reduce((sum, { head, range }) => sum + head.length + range.end - range.start + 1, tail.length);
  return { contentType: `multipart/byteranges; boundary=${boundary}`, length, parts, tail };
}
