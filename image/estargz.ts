// A streaming eStargz writer, laid out exactly as github.com/containerd/stargz-snapshotter/estargz
// writes and reads it: the tar stream cut into gzip members so that every chunk of every regular
// file starts a member of its own (headers and tar padding ride in the member before or after),
// then one member holding the TOC `stargz.index.json` (plus the tar trailer), then the 51-byte footer.
// Members are compressed in parallel on worker threads (deflate settings chosen per member from
// its bytes, see deflate.ts) and handed to the sink strictly in order, one write at a time.
import { createHash, type Hash } from 'node:crypto';
import { chooseDeflate, DEFAULT_DEFLATE, type DeflateSettings } from './deflate.ts';
import { gzipPool, type GzipResult } from './gzip-pool.ts';
import { footer, TOC_TAR_NAME } from './footer.ts';
import { padding, tarHeader, tarTrailer, type TarEntry } from './tar.ts';

export const NO_PREFETCH_LANDMARK = '.no.prefetch.landmark';
export const PREFETCH_LANDMARK = '.prefetch.landmark';
export const DEFAULT_CHUNK_SIZE = 4 << 20;

export interface TocEntry {
  name: string;
  type: 'dir' | 'reg' | 'chunk';
  size?: number;
  modtime?: string;
  mode?: number;
  offset?: number;
  chunkOffset?: number;
  chunkSize?: number;
  digest?: string;
  chunkDigest?: string;
}

export interface Toc {
  version: 1;
  entries: TocEntry[];
}

/**
 * Where compressed bytes go, in order: a file, an upload, a hash. The writer awaits each write
 * before the next one (backpressure), and never touches a buffer again once it is written.
 */
export interface ByteSink {
  write(bytes: Buffer): Promise<void>;
}

export interface LayerResult {
  /** Digest and size of the compressed blob. */
  digest: string;
  size: number;
  /** Digest and size of the uncompressed tar stream (the config's diff_id). */
  diffId: string;
  uncompressedSize: number;
  /** Digest of the TOC JSON (the `containerd.io/snapshot/stargz/toc.digest` annotation). */
  tocDigest: string;
  toc: Toc;
}

export interface EStargzOptions {
  chunkSize?: number;
  /** A fixed gzip level for every member (as estargz.Build -level); by default chosen per member. */
  level?: number;
  /**
   * Members being compressed or waiting to be written at once (memory: about 2 x chunkSize each).
   * Default: two per compression thread plus two, so no thread waits while the oldest is written.
   */
  concurrency?: number;
}

/** The chunk a member begins with: its TOC entry gets the chunk's digest once compressed. */
interface LeadingChunk {
  entry: TocEntry;
  length: number;
  /** The file's own entry when this chunk is the whole file (its digest is the chunk's). */
  wholeFile?: TocEntry;
}

interface PendingMember {
  compressed: Promise<GzipResult>;
  /** TOC entries whose `offset` is where this member starts. */
  startsAt: TocEntry[];
  leading?: LeadingChunk;
}

export class EStargzWriter {
  readonly chunkSize: number;
  private readonly fixed?: DeflateSettings;
  private readonly concurrency: number;
  private readonly entries: TocEntry[] = [];
  private readonly diffHash = createHash('sha256');
  private readonly blobHash = createHash('sha256');
  private uncompressedSize = 0;
  private compressedSize = 0;
  private readonly inFlight: PendingMember[] = [];
  /** The member being filled: uncompressed parts and the entries that start it. */
  private open: { parts: Buffer[]; startsAt: TocEntry[]; leading?: LeadingChunk } = { parts: [], startsAt: [] };

  constructor(
    private readonly sink: ByteSink,
    options: EStargzOptions = {},
  ) {
    this.chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    if (options.level !== undefined) this.fixed = { ...DEFAULT_DEFLATE, level: options.level };
    this.concurrency = Math.max(1, options.concurrency ?? 2 * gzipPool().threads + 2);
  }

  async addDirectory(entry: TarEntry): Promise<void> {
    this.append(tarHeader(entry));
    this.entries.push({ name: entry.name, type: 'dir', modtime: modtime(entry.mtime), mode: entry.mode });
  }

  /**
   * Add a regular file. `chunks` must yield the content as buffers of exactly `chunkSize` bytes
   * (the last one shorter) adding up to `entry.size`; each starts a gzip member.
   */
  async addFile(entry: TarEntry, chunks: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<void> {
    this.append(tarHeader(entry));
    const fileEntry: TocEntry = { name: entry.name, type: 'reg', size: entry.size, modtime: modtime(entry.mtime), mode: entry.mode };
    this.entries.push(fileEntry);
    // One chunk's digest is the file's digest: that hash is taken on a worker with the chunk's.
    const wholeFile = entry.size <= this.chunkSize ? fileEntry : undefined;
    const fileHash = wholeFile ? undefined : createHash('sha256');
    let written = 0;
    let tocEntry = fileEntry;
    for await (const chunk of chunks) {
      const expected = Math.min(this.chunkSize, entry.size - written);
      if (chunk.length !== expected) throw new Error(`${entry.name}: got a chunk of ${chunk.length} bytes at offset ${written}, expected ${expected}`);
      if (tocEntry !== fileEntry) this.entries.push(tocEntry);
      if (chunk.length === this.chunkSize) tocEntry.chunkSize = chunk.length;
      tocEntry.chunkOffset = written || undefined;
      fileHash?.update(chunk);
      await this.startMember({ entry: tocEntry, length: chunk.length, wholeFile });
      this.append(chunk);
      written += chunk.length;
      tocEntry = { name: entry.name, type: 'chunk' };
    }
    if (written !== entry.size) throw new Error(`${entry.name}: read ${written} bytes, expected ${entry.size} (did it change during the build?)`);
    if (fileHash) fileEntry.digest = digestOf(fileHash);
    else if (entry.size === 0) fileEntry.digest = EMPTY_DIGEST;
    this.append(Buffer.alloc(padding(entry.size)));
  }

  /** Write the TOC and the footer; resolves once every byte is handed to the sink. */
  async finish(): Promise<LayerResult> {
    await this.closeMember();
    while (this.inFlight.length > 0) await this.writeOldest();

    const toc: Toc = { version: 1, entries: this.entries };
    const tocJson = Buffer.from(JSON.stringify(toc));
    const tocOffset = this.compressedSize;
    const tocTar = Buffer.concat([
      tarHeader({ name: TOC_TAR_NAME, type: 'file', size: tocJson.length, mode: 0o644, mtime: 0 }),
      tocJson,
      Buffer.alloc(padding(tocJson.length)),
      tarTrailer(),
    ]);
    this.hashUncompressed(tocTar);
    await this.emit((await gzipPool().compress({ bytes: tocTar, settings: this.fixed ?? DEFAULT_DEFLATE, digestLength: 0 })).gzip);
    await this.emit(footer(tocOffset));
    return {
      digest: digestOf(this.blobHash),
      size: this.compressedSize,
      diffId: digestOf(this.diffHash),
      uncompressedSize: this.uncompressedSize,
      tocDigest: digestOf(createHash('sha256').update(tocJson)),
      toc,
    };
  }

  private append(bytes: Buffer): void {
    if (bytes.length > 0) this.open.parts.push(bytes);
  }

  /** Close the open member and start a new one that begins with `leading`'s data. */
  private async startMember(leading: LeadingChunk): Promise<void> {
    await this.closeMember();
    this.open.startsAt.push(leading.entry);
    this.open.leading = leading;
  }

  private async closeMember(): Promise<void> {
    const { parts, startsAt, leading } = this.open;
    this.open = { parts: [], startsAt: [] };
    if (parts.length === 0) return;
    const bytes = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    this.hashUncompressed(bytes);
    const settings = this.fixed ?? chooseDeflate(bytes);
    const compressed = gzipPool().compress({ bytes, settings, digestLength: leading?.length ?? 0 });
    compressed.catch(() => {}); // awaited in order by writeOldest; a failure is seen there
    this.inFlight.push({ compressed, startsAt, leading });
    if (this.inFlight.length >= this.concurrency) await this.writeOldest();
  }

  private async writeOldest(): Promise<void> {
    const member = this.inFlight.shift()!;
    const { gzip, digest } = await member.compressed;
    for (const entry of member.startsAt) entry.offset = this.compressedSize;
    if (member.leading) {
      member.leading.entry.chunkDigest = digest;
      if (member.leading.wholeFile) member.leading.wholeFile.digest = digest;
    }
    await this.emit(gzip);
  }

  private hashUncompressed(bytes: Buffer): void {
    this.diffHash.update(bytes);
    this.uncompressedSize += bytes.length;
  }

  private async emit(bytes: Buffer): Promise<void> {
    this.blobHash.update(bytes);
    this.compressedSize += bytes.length;
    await this.sink.write(bytes);
  }
}

const EMPTY_DIGEST = `sha256:${createHash('sha256').digest('hex')}`;

function digestOf(hash: Hash): string {
  return `sha256:${hash.digest('hex')}`;
}

// As the reference writer: RFC 3339 in UTC, and nothing for the epoch itself.
function modtime(seconds: number): string | undefined {
  return seconds === 0 ? undefined : new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
}
