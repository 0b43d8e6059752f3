// A hand-off from a writer that pushes bytes (the layer writer's ByteSink) to a reader that pulls
// them (an upload reading an async iterable): each write waits until the reader has taken it, so
// the writer runs no further ahead than one piece and memory stays bounded by the reader's window.
import type { ByteSink } from '../image/estargz.ts';

export class ChannelClosed extends Error {}

export class ByteChannel implements ByteSink, AsyncIterable<Buffer> {
  private piece?: { bytes: Buffer; taken: () => void; dropped: (error: Error) => void };
  private wake?: () => void;
  private ended = false;
  private failure?: unknown;
  private closed?: Error;

  /** Resolves once the reader has taken `bytes`; rejects with ChannelClosed if it stopped reading. */
  write(bytes: Buffer): Promise<void> {
    if (this.closed) return Promise.reject(this.closed);
    if (this.piece || this.ended) return Promise.reject(new Error('ByteChannel: one write at a time, none after end()'));
    return new Promise<void>((taken, dropped) => {
      this.piece = { bytes, taken, dropped };
      this.wake?.();
    });
  }

  /** No more bytes: the reader's loop ends once it has taken the last piece. */
  end(): void {
    this.ended = true;
    this.wake?.();
  }

  /** The writer failed: the reader's loop throws `error` (so an upload can cancel its session). */
  fail(error: unknown): void {
    this.failure ??= error;
    this.ended = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    try {
      for (;;) {
        if (this.piece) {
          const { bytes, taken } = this.piece;
          this.piece = undefined;
          taken();
          yield bytes;
        } else if (this.failure !== undefined) throw this.failure;
        else if (this.ended) return;
        else await new Promise<void>((resolve) => (this.wake = resolve));
      }
    } finally {
      // The reader stopped (done, failed or gave up): a writer still waiting must not hang.
      this.closed = new ChannelClosed('the upload stopped reading the layer');
      this.piece?.dropped(this.closed);
      this.piece = undefined;
    }
  }
}
