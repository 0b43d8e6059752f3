// HTTP byte ranges (RFC 9110 §14): one range is served as 206; several are ignored (a full 200,
// which every client handles); an invalid or unsatisfiable `bytes=` range is a 416.

/** Inclusive byte offsets. */
export interface ByteRange {
  start: number;
  end: number;
}

export type RangeResult =
  | { kind: 'none' } // no Range header, another unit, or several ranges: serve everything
  | { kind: 'range'; range: ByteRange }
  | { kind: 'unsatisfiable' };

const SPEC = /^(\d*)-(\d*)$/;

export function parseRange(header: string | undefined | null, size: number): RangeResult {
  if (!header) return { kind: 'none' };
  const eq = header.indexOf('=');
  if (eq < 0) return { kind: 'unsatisfiable' };
  if (header.slice(0, eq).trim().toLowerCase() !== 'bytes') return { kind: 'none' };
  const specs = header.slice(eq + 1).split(',').map((s) => s.trim());
  const parsed: ByteRange[] = [];
  for (const spec of specs) {
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
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end < start) return { kind: 'unsatisfiable' };
    if (start >= size) continue;
    parsed.push({ start, end: Math.min(end, size - 1) });
  }
  if (parsed.length === 0) return { kind: 'unsatisfiable' };
  if (parsed.length > 1) return { kind: 'none' };
  return { kind: 'range', range: parsed[0] };
}
