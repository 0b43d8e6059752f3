// The eStargz footer and the TOC's name in the tar, as github.com/containerd/stargz-snapshotter/estargz
// defines them: shared by the writer (estargz.ts) and the TOC reader (toc.ts). Nothing Node-only
// here, so the Cloudflare Worker, which reads TOCs through the client, can bundle the reader
// without the writer's worker threads.

export const TOC_TAR_NAME = 'stargz.index.json';
export const FOOTER_SIZE = 51;

/**
 * The eStargz footer: an empty gzip member whose extra field says where the TOC member starts
 * ("SG" subfield, "%016xSTARGZ"). Stored (not deflated), so it is always 51 bytes.
 */
export function footer(tocOffset: number): Buffer {
  const subfield = Buffer.from(`${tocOffset.toString(16).padStart(16, '0')}STARGZ`, 'ascii');
  const extra = Buffer.concat([Buffer.from('SG', 'ascii'), u16(subfield.length), subfield]);
  const bytes = Buffer.concat([
    Buffer.from([0x1f, 0x8b, 0x08, 0x04, 0, 0, 0, 0, 0, 0xff]), // magic, deflate, FEXTRA, mtime 0, xfl 0, OS unknown
    u16(extra.length),
    extra,
    Buffer.from([0x01, 0x00, 0x00, 0xff, 0xff]), // one final stored block of length 0
    Buffer.alloc(8), // CRC-32 and size of nothing
  ]);
  if (bytes.length !== FOOTER_SIZE) throw new Error(`footer is ${bytes.length} bytes`);
  return bytes;
}

function u16(value: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(value);
  return b;
}

/** The TOC offset a footer points at, or undefined when the bytes are not an eStargz footer. */
export function parseFooter(bytes: Buffer): number | undefined {
  if (bytes.length !== FOOTER_SIZE || bytes[0] !== 0x1f || bytes[1] !== 0x8b || !(bytes[3] & 0x04)) return undefined;
  const text = bytes.subarray(16, 16 + 22).toString('ascii');
  if (bytes.toString('ascii', 12, 14) !== 'SG' || !text.endsWith('STARGZ')) return undefined;
  const offset = Number.parseInt(text.slice(0, 16), 16);
  return Number.isSafeInteger(offset) ? offset : undefined;
}
