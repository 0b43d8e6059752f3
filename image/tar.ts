// Deterministic tar headers: ustar, with a PAX extended header only where ustar cannot hold
// the name (over 100 bytes or not ASCII) or the size (8 GiB and more).
// Everything that varies between machines (owner, names, times, umask) is fixed by the caller's entry.

export const BLOCK = 512;
/** The largest mtime a ustar header holds, in seconds: 11 octal digits (2242-03-16T12:56:31Z). */
export const MAX_MTIME = 8 ** 11 - 1;
const USTAR_MAX_SIZE = 0o77777777777; // 11 octal digits: 8 GiB - 1
const PAX_HEADER_NAME = 'PaxHeaders.0/entry';

export interface TarEntry {
  /** Path inside the archive, '/'-separated, no leading slash; directories end with '/'. */
  name: string;
  type: 'file' | 'dir';
  size: number;
  mode: number;
  /** Seconds since the epoch. */
  mtime: number;
}

/** The bytes that stand before an entry's content: an optional PAX header block pair and the ustar header. */
export function tarHeader(entry: TarEntry): Buffer {
  const name = Buffer.from(entry.name, 'utf8');
  const pax: Record<string, string> = {};
  const asciiName = /^[\x20-\x7e]*$/.test(entry.name);
  if (name.length > 100 || !asciiName) pax.path = entry.name;
  if (entry.size > USTAR_MAX_SIZE) pax.size = String(entry.size);

  const parts: Buffer[] = [];
  if (Object.keys(pax).length > 0) {
    const records = Buffer.from(Object.entries(pax).map(([k, v]) => paxRecord(k, v)).join(''), 'utf8');
    parts.push(ustarHeader({ name: PAX_HEADER_NAME, typeflag: 'x', size: records.length, mode: 0o644, mtime: entry.mtime }));
    parts.push(records, Buffer.alloc(padding(records.length)));
  }
  // A reader that knows no PAX still gets a usable ASCII name, truncated to the field.
  const fallbackName = asciiName ? entry.name : entry.name.replace(/[^\x20-\x7e]/g, '_');
  parts.push(
    ustarHeader({
      name: fallbackName,
      typeflag: entry.type === 'dir' ? '5' : '0',
      size: entry.size > USTAR_MAX_SIZE ? 0 : entry.size,
      mode: entry.mode,
      mtime: entry.mtime,
    }),
  );
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

/** Zero bytes that round content of `size` up to a whole block. */
export function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** The end-of-archive marker: two zero blocks. */
export function tarTrailer(): Buffer {
  return Buffer.alloc(2 * BLOCK);
}

// "%d %s=%s\n" where %d counts the whole record, itself included.
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyLength = Buffer.byteLength(body);
  let length = bodyLength + 1;
  while (String(length).length + bodyLength !== length) length = String(length).length + bodyLength;
  return `${length}${body}`;
}

interface UstarFields {
  name: string;
  typeflag: string;
  size: number;
  mode: number;
  mtime: number;
}

function ustarHeader(fields: UstarFields): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(fields.name.slice(0, 100), 0, 100, 'ascii');
  octal(block, 100, 8, fields.mode);
  octal(block, 108, 8, 0); // uid
  octal(block, 116, 8, 0); // gid
  octal(block, 124, 12, fields.size);
  octal(block, 136, 12, fields.mtime);
  block.fill(0x20, 148, 156); // checksum is computed with its own field as spaces
  block.write(fields.typeflag, 156, 1, 'ascii');
  block.write('ustar\x0000', 257, 8, 'ascii');
  octal(block, 329, 8, 0); // devmajor
  octal(block, 337, 8, 0); // devminor
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\x00 `, 148, 8, 'ascii');
  return block;
}

// Zero-padded octal with a NUL terminator, as GNU tar and Go's archive/tar write them.
function octal(block: Buffer, offset: number, width: number, value: number): void {
  block.write(`${value.toString(8).padStart(width - 1, '0')}\x00`, offset, width, 'ascii');
}
