// A hand-off from a writer that pushes bytes (the layer writer's ByteSink) to a reader that pulls
// them (an upload reading an async iterable). Up to `bufferBytes` may wait in between, so the
// writer keeps compressing while the reader is busy sending the previous window (a PATCH); past
// that a write waits until the reader takes from the queue, so memory stays bounded.
import type { ByteSink } from '../image/estargz.ts';

export class ChannelClosed extends Error {}

export class ByteChannel implements ByteSink, AsyncIterable<Buffer> {
  private readonly queue: Buffer[] = [];
  private queued = 0;
  /** Wakes the reader (a piece arrived, or the end) or the writer (room freed, or closed). */
  private wakeReader?: () => void;
  private wakeWriter?: () => void;
  private ended = false;
  private failure?: unknown;
  private closed?: Error;

  /** @param bufferBytes bytes the writer may run ahead of the reader (default 0: one piece). */
  constructor(private readonly bufferBytes = 0) {}

  /** Resolves once `bytes` is queued within the buffer; rejects with ChannelClosed if the reader stopped. */
  async write(bytes: Buffer): Promise<void> {
    if (this.ended) throw new Error('ByteChannel: write after end()');
    if (this.wakeWriter) throw new Error('ByteChannel: one write at a time');
    while (!this.closed && this.queued > 0 && this.queued + bytes.length > this.bufferBytes) {
      await new Promise<void>((resolve) => (this.wakeWriter = resolve));
      this.wakeWriter = undefined;
    }
    if (this.closed) throw this.closed;
    this.queue.push(bytes);
    this.queued += bytes.length;
    this.wakeReader?.();
  }

  /** No more bytes: the reader's loop ends once it has taken the last piece. */
  end(): void {
    this.ended = true;
    this.wakeReader?.();
  }

  /** The writer failed: the reader's loop throws `error` (so an upload can cancel its session). */
  fail(error: unknown): void {
    this.failure ??= error;
    this.ended = true;
    this.wakeReader?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    try {
      for (;;) {
        if (this.failure !== undefined) throw this.failure;
        const bytes = this.queue.shift();
        if (bytes) {
          this.queued -= bytes.length;
          this.wakeWriter?.();
          yield bytes;
        } else if (this.ended) return;
        else {
          await new Promise<void>((resolve) => (this.wakeReader = resolve));
          this.wakeReader = undefined;
        }
      }
    } finally {
      // The reader stopped (done, failed or gave up): a writer still waiting must not hang.
      this.closed = new ChannelClosed('the upload stopped reading the layer');
      this.queue.length = 0;
      this.wakeWriter?.();
    }
  }
}
