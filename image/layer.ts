// One model's files as one reproducible eStargz layer: the landmark first (as estargz.Build
// does when nothing is prioritised), then every folder and file sorted by path, owned by 0:0,
// mode 0755/0644 and mtime SOURCE_DATE_EPOCH, whatever they were on disk. With files to prefetch,
// as estargz.Build with prioritised files: those files (after their folders), the prefetch
// landmark, then the rest, each part in archive order.
import { DEFAULT_CHUNK_SIZE, EStargzWriter, NO_PREFETCH_LANDMARK, PREFETCH_LANDMARK, type ByteSink, type EStargzOptions, type LayerResult } from './estargz.ts';
import { FOOTER_SIZE } from './footer.ts';
import type { ModelSource, SourceFile } from './source.ts';
import { BLOCK, padding, tarHeader } from './tar.ts';

const LANDMARK_CONTENT = Buffer.from([0x0f]);
const DIR_MODE = 0o755;
const FILE_MODE = 0o644;

export interface LayerOptions extends EStargzOptions {
  /** SOURCE_DATE_EPOCH, in seconds. */
  mtime?: number;
  /**
   * Files to put before the prefetch landmark, which the stargz snapshotter fetches at mount time.
   * When it selects none (or is absent) the layer is the default one, `.no.prefetch.landmark` first.
   */
  prefetch?: (file: SourceFile) => boolean;
}

type Item = { name: string; file?: SourceFile };

/** Folders (with a trailing '/') and files in archive order: sorted by the bytes of their names. */
export function archiveOrder(files: SourceFile[]): Item[] {
  const items = new Map<string, Item>();
  for (const file of files) {
    const parts = file.path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = `${parts.slice(0, i).join('/')}/`;
      if (!items.has(dir)) items.set(dir, { name: dir });
    }
    items.set(file.path, { name: file.path, file });
  }
  return [...items.values()].sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
}

/**
 * `items` (in archive order) split into the prefetched files with every folder above them, and
 * the rest; both stay in archive order, so each folder comes before what it holds.
 */
function prefetchSplit(items: Item[], prefetch: (file: SourceFile) => boolean): { first: Item[]; rest: Item[] } {
  const chosen = new Set<string>();
  for (const item of items) {
    if (!item.file || !prefetch(item.file)) continue;
    chosen.add(item.name);
    for (let slash = item.name.indexOf('/'); slash >= 0; slash = item.name.indexOf('/', slash + 1)) chosen.add(item.name.slice(0, slash + 1));
  }
  return { first: items.filter((i) => chosen.has(i.name)), rest: items.filter((i) => !chosen.has(i.name)) };
}

/** The folders and files writeLayer writes before the prefetch landmark (none without a rule), and after it. */
function layerParts(files: SourceFile[], prefetch?: (file: SourceFile) => boolean): { first: Item[]; rest: Item[] } {
  const ordered = archiveOrder(files);
  return prefetch ? prefetchSplit(ordered, prefetch) : { first: [], rest: ordered };
}

/**
 * The order in which writeLayer reads `files` for the rule `prefetch`: a source that fetches
 * ahead of the writer (the Hub's download window) fetches in this order.
 */
export function readOrder(files: SourceFile[], prefetch?: (file: SourceFile) => boolean): SourceFile[] {
  const { first, rest } = layerParts(files, prefetch);
  return [...first, ...rest].flatMap((item) => (item.file ? [item.file] : []));
}

/** The most bytes of fields one TOC entry has besides its name (two sha256 digests, four numbers, a date, keys). */
const TOC_ENTRY_BYTES = 512;
/** zlib's deflateBound for the default window and memLevel (any level or strategy), plus the gzip header and trailer. */
const gzipBound = (n: number, members: number) => n + Math.floor(n / 2 ** 12) + Math.floor(n / 2 ** 14) + Math.floor(n / 2 ** 25) + members * (7 + 18);

/**
 * An upper bound of the size in bytes of the blob writeLayer makes of `files` with `chunkSize`
 * (what staging a layer on disk needs). Derived from the writer (image/estargz.ts, image/tar.ts):
 * - tar: each folder and file has its header (ustar, plus a PAX pair for long or non-ASCII names:
 *   tarHeader's own length), content padded to 512; the landmark takes 1024; the TOC member holds
 *   a 512-byte header, the TOC JSON padded to 512, and the 1024-byte trailer;
 * - TOC JSON: one entry per folder, file, further chunk and the landmark, each at most
 *   TOC_ENTRY_BYTES plus its name JSON-escaped (at most 6 bytes a byte, as \u00XX);
 * - gzip: one member per chunk of each file (an empty file: one), one before (folders) and one
 *   for the TOC, each of n bytes at most n + n/2^12 + n/2^14 + n/2^25 + 7 (zlib's deflateBound)
 *   + 18 (gzip header and trailer); the sums of the quotients bound the members' own;
 * - the footer.
 */
export function layerSizeBound(files: SourceFile[], chunkSize = DEFAULT_CHUNK_SIZE): number {
  let tar = 2 * BLOCK; // the landmark
  let toc = 64 + TOC_ENTRY_BYTES + 6 * NO_PREFETCH_LANDMARK.length; // {"version":1,"entries":[]} and the landmark
  let members = 2;
  for (const { name, file } of archiveOrder(files)) {
    const size = file?.size ?? 0;
    const chunks = file ? Math.max(1, Math.ceil(size / chunkSize)) : 0;
    tar += tarHeader({ name, type: file ? 'file' : 'dir', size, mode: FILE_MODE, mtime: 0 }).length + size + padding(size);
    toc += Math.max(1, chunks) * (TOC_ENTRY_BYTES + 6 * Buffer.byteLength(name));
    members += chunks;
  }
  tar += BLOCK + toc + padding(toc) + 2 * BLOCK;
  return gzipBound(tar, members) + FOOTER_SIZE;
}

/**
 * Write `source` as one eStargz layer into `sink` (any ByteSink: a file, an upload, a hash; each
 * write is awaited, so a slow sink slows the reading). Files are read once, in readOrder;
 * the source is closed at the end, failed or not. Resolves with the blob's digest and size, the
 * diffID, the TOC digest, the file count and how many files precede the prefetch landmark once
 * the last byte has been written.
 */
export async function writeLayer(source: ModelSource, sink: ByteSink, options: LayerOptions = {}): Promise<LayerResult & { files: number; prefetched: number }> {
  const mtime = options.mtime ?? 0;
  const writer = new EStargzWriter(sink, options);
  const chunkSize = writer.chunkSize;
  try {
    const files = await source.list();
    const { first, rest } = layerParts(files, options.prefetch);
    const add = async (item: Item) => {
      if (item.file) {
        const entry = { name: item.name, type: 'file' as const, size: item.file.size, mode: FILE_MODE, mtime };
        await writer.addFile(entry, source.chunks(item.file, chunkSize));
      } else {
        await writer.addDirectory({ name: item.name, type: 'dir', size: 0, mode: DIR_MODE, mtime });
      }
    };
    for (const item of first) await add(item);
    const landmark = first.length > 0 ? PREFETCH_LANDMARK : NO_PREFETCH_LANDMARK;
    await writer.addFile({ name: landmark, type: 'file', size: 1, mode: FILE_MODE, mtime }, [LANDMARK_CONTENT]);
    for (const item of rest) await add(item);
    return { ...(await writer.finish()), files: files.length, prefetched: first.filter((i) => i.file).length };
  } finally {
    await source.close?.();
  }
}
