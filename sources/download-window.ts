// Files fetched ahead of the layer writer through a bounded disk window: each file is cut into
// segments (ranged requests of up to 32 MiB), several downloaded at once in archive order into
// their own spool files (counted in whole disk blocks), and read back in order by the writer; a segment's disk space is given
// back as soon as it has been read. A cut connection resumes from the byte it reached. Every
// file is checked against its sha256 (LFS) or git blob id as its last byte is read, so a bad
// file fails the build before the layer is finished, let alone tagged.
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { isTransientNetworkError, withRetries } from '../client/retry.ts';
import { contentHasher, TransientError, VerifyError, type Body, type ContentKey } from './content-cache.ts';

export const DEFAULT_WINDOW_BYTES = 1 << 30;
const MAX_SEGMENT = 32 << 20;
const MIN_SEGMENT = 64 << 10;
/** A spool file takes whole file-system blocks: 4 KiB on ext4, xfs and tmpfs. */
const BLOCK = 4096;

/** The disk a spool file of `size` bytes takes: whole blocks, at least one (the window counts these, not bytes, so many small files stay within it too). */
const onDisk = (size: number) => Math.max(1, Math.ceil(size / BLOCK)) * BLOCK;

export interface WindowFile {
  path: string;
  size: number;
  key: ContentKey;
}

/** Bytes [start, end) of `file`; `from` in the Body says where the body really begins. */
export type OpenRange = (file: WindowFile, start: number, end: number, signal: AbortSignal) => Promise<Body>;

export interface WindowOptions {
  /** Where the spool folder is made (default: the OS temp folder). */
  dir: string;
  /** Disk the spool may use at most, in bytes (default 1 GiB). */
  windowBytes?: number;
  /** Ranged requests in flight at once (default 4). */
  concurrency?: number;
  /** Called with each count of bytes received. */
  onBytes?: (bytes: number) => void;
}

interface Segment {
  file: number;
  start: number;
  end: number;
  spool: string;
  done: Promise<void>;
}

export class DownloadWindow {
  /** The most disk (whole blocks) the spool held (reserved) at once: never above the window. */
  peakBytes = 0;
  private readonly segments: Segment[] = [];
  /** Segments not started yet, and how to start each. */
  private readonly starters = new Map<Segment, () => Promise<void>>();
  /** Read pieces of the chunk being put together. */
  private pending: Buffer[] = [];
  private readonly controller = new AbortController();
  private readonly windowBytes: number;
  private readonly concurrency: number;
  private readonly segmentBytes: number;
  private spoolDir?: string;
  private nextStart = 0;
  private nextRead = 0;
  private inFlight = 0;
  private reserved = 0;

  constructor(
    private readonly files: readonly WindowFile[],
    private readonly openRange: OpenRange,
    private readonly options: WindowOptions,
  ) {
    this.windowBytes = options.windowBytes ?? DEFAULT_WINDOW_BYTES;
    this.concurrency = Math.max(1, options.concurrency ?? 4);
    this.segmentBytes = Math.max(MIN_SEGMENT, Math.min(MAX_SEGMENT, Math.floor(this.windowBytes / this.concurrency / BLOCK) * BLOCK));
    if (this.segmentBytes > this.windowBytes) throw new Error(`the download window must be at least ${MIN_SEGMENT} bytes`);
  }

  /** Start downloading (in archive order). */
  async start(): Promise<void> {
    this.spoolDir = await mkdtemp(path.join(this.options.dir, 'depot-window-'));
    this.files.forEach((file, index) => {
      for (let start = 0; start < file.size; start += this.segmentBytes) {
        const segment = { file: index, start, end: Math.min(file.size, start + this.segmentBytes), spool: path.join(this.spoolDir!, `${index}-${start}`) } as Segment;
        let run!: () => Promise<void>;
        segment.done = new Promise<void>((resolve, reject) => (run = () => this.download(segment).then(resolve, reject)));
        segment.done.catch(() => {}); // seen by the reader, or dropped by close()
        this.starters.set(segment, run);
        this.segments.push(segment);
      }
    });
    this.pump();
  }

  /**
   * The next file's bytes in buffers of exactly `chunkSize` (the last one shorter), verified
   * against its key once the last one is read (VerifyError). Files must be read in list order.
   */
  async *chunks(file: WindowFile, chunkSize: number): AsyncIterable<Buffer> {
    const index = this.files.indexOf(file);
    if (index !== this.nextRead) throw new Error(`${file.path} read out of order`);
    this.nextRead++;
    const hash = contentHasher(file.key);
    const mine = this.segments.filter((s) => s.file === index);
    let handle: FileHandle | undefined;
    let position = 0;
    try {
      for (const segment of mine) {
        await segment.done;
        handle = await open(segment.spool, 'r');
        while (position < segment.end) {
          const length = Math.min(chunkSize - (position % chunkSize), segment.end - position);
          const piece = Buffer.allocUnsafeSlow(length);
          const { bytesRead } = await handle.read(piece, 0, length, position - segment.start);
          if (bytesRead !== length) throw new Error(`${file.path}: spool file ended early`);
          hash.update(piece);
          position += length;
          yield* this.assemble(piece, chunkSize, position === file.size);
        }
        await handle.close();
        handle = undefined;
        await this.release(segment);
      }
      yield* this.assemble(Buffer.alloc(0), chunkSize, true);
    } finally {
      await handle?.close();
    }
    const actual = hash.digest('hex');
    if (actual !== file.key.hex) {
      throw new VerifyError(`${file.path}: ${file.key.algorithm === 'sha256' ? 'sha256' : 'git blob id'} mismatch: expected ${file.key.hex}, got ${actual}`);
    }
  }

  /** Stop every download and delete the spool. */
  async close(): Promise<void> {
    this.controller.abort();
    this.nextStart = this.segments.length;
    await Promise.allSettled(this.segments.map((s) => (this.starters.has(s) ? undefined : s.done)));
    if (this.spoolDir) await rm(this.spoolDir, { recursive: true, force: true });
  }

  // Pieces end at chunk or segment boundaries; a chunk split over two segments is joined here.
  private *assemble(piece: Buffer, chunkSize: number, last: boolean): Iterable<Buffer> {
    if (piece.length > 0) this.pending.push(piece);
    const held = this.pending.reduce((sum, b) => sum + b.length, 0);
    if (held === chunkSize || (last && held > 0)) {
      const chunk = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending);
      this.pending = [];
      yield chunk;
    }
  }

  private async release(segment: Segment): Promise<void> {
    await rm(segment.spool, { force: true });
    this.reserved -= onDisk(segment.end - segment.start);
    this.pump();
  }

  private pump(): void {
    while (this.inFlight < this.concurrency && this.nextStart < this.segments.length) {
      const segment = this.segments[this.nextStart];
      const size = onDisk(segment.end - segment.start);
      if (this.reserved + size > this.windowBytes) return;
      this.nextStart++;
      this.reserved += size;
      this.peakBytes = Math.max(this.peakBytes, this.reserved);
      this.inFlight++;
      const run = this.starters.get(segment)!;
      this.starters.delete(segment);
      void run().finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  /** Fetch one segment into its spool file, resuming a cut body from the byte it reached. */
  private async download(segment: Segment): Promise<void> {
    const file = this.files[segment.file];
    const handle = await open(segment.spool, 'w');
    let written = 0;
    try {
      await withRetries(
        async () => {
          const want = segment.start + written;
          const { from, body } = await this.openRange(file, want, segment.end, this.controller.signal);
          let at = from;
          for await (const received of body) {
            const bytes = Buffer.from(received.buffer, received.byteOffset, received.byteLength);
            const skip = Math.max(0, want - at); // a server that ignored the range sent earlier bytes too
            at += bytes.length;
            const useful = bytes.subarray(skip, skip + (segment.end - segment.start - written));
            if (useful.length === 0) {
              if (at >= segment.end) break;
              continue;
            }
            await writeFully(handle, useful, written);
            written += useful.length;
            this.options.onBytes?.(useful.length);
            if (segment.start + written === segment.end) break;
          }
          if (segment.start + written < segment.end) {
            throw new TransientError(`${file.path}: download ended at byte ${segment.start + written} of ${file.size}`);
          }
        },
        { retryable: (error) => !this.controller.signal.aborted && (error instanceof TransientError || isTransientNetworkError(error)) },
      );
    } finally {
      await handle.close();
    }
  }
}

async function writeFully(handle: FileHandle, bytes: Buffer, position: number): Promise<void> {
  for (let offset = 0; offset < bytes.length; ) {
    const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset, position + offset);
    offset += bytesWritten;
  }
}
