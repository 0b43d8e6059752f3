// The one way a response body reaches a Node writable: a chunk at a time, the next one only once
// the writable took the previous one. A client that stops reading stops its pump, so a stalled
// response holds one chunk, whatever the body is (bytes, a file, a web stream, multipart parts).
// Only types come from Node here: the app builds bodies with `concatBodies` on any runtime.
import { NODE_PUMP, type BlobBody, type NodePump, type PumpTarget, type StreamBody } from './store.ts';

/** A writable watched for its end: write() waits for the chunk to be taken or the writable to go. */
export interface Sink {
  /** Resolves true once `out` took the chunk, false once `out` closed or failed before that. */
  write(chunk: Uint8Array): Promise<boolean>;
  readonly gone: boolean;
  /** Resolves (false) once `out` closed or failed. */
  readonly closed: Promise<false>;
  /** Stops watching `out` (call when the pump is done). */
  release(): void;
}

export function sinkOf(out: PumpTarget): Sink {
  let gone = Boolean(out.destroyed);
  let onGone!: () => void;
  const closed = new Promise<false>((resolve) => (onGone = () => resolve(false)));
  const markGone = () => {
    gone = true;
    onGone();
  };
  out.once('close', markGone);
  out.once('error', markGone);
  if (gone) onGone();
  return {
    get gone() {
      return gone || Boolean(out.destroyed);
    },
    closed,
    write(chunk) {
      if (gone || out.destroyed) return Promise.resolve(false);
      const taken = new Promise<true>((resolve) => out.write(chunk, () => resolve(true)));
      return Promise.race([taken, closed]);
    },
    release() {
      out.off('close', markGone);
      out.off('error', markGone);
    },
  };
}

/** A web stream into `out` through a Sink; the stream is cancelled when `out` goes first or on error. */
async function pumpWeb(stream: ReadableStream<Uint8Array>, out: PumpTarget): Promise<boolean> {
  const reader = stream.getReader();
  const sink = sinkOf(out);
  let done = false;
  try {
    for (;;) {
      if (sink.gone) return false;
      // A client that leaves while the body waits on its source (a stalled upstream) cancels it
      // at once, not when the source next sends or times out.
      const next = await Promise.race([reader.read(), sink.closed]);
      if (next === false) return false;
      if (next.done) return (done = true);
      if (!(await sink.write(next.value))) return false;
    }
  } finally {
    sink.release();
    if (!done) await reader.cancel().catch(() => {});
  }
}

/**
 * Writes `body` into `out` (never ends it): the body's own NODE_PUMP when it has one, else one
 * chunk at a time. Resolves true once every byte was taken, false once `out` went away first;
 * rejects when the body fails (the caller then destroys `out`: HTTP reports a cut body that way).
 */
export function pumpBody(body: BlobBody, out: PumpTarget): Promise<boolean> {
  if (body instanceof Uint8Array) {
    const sink = sinkOf(out);
    return sink.write(body).finally(() => sink.release());
  }
  const pump = body[NODE_PUMP];
  return pump ? pump(out) : pumpWeb(body, out);
}

/** A body piece: bytes, or a body opened only when the previous pieces were taken (undefined: gone). */
export type Piece = Uint8Array | (() => Promise<BlobBody | undefined>);

/**
 * The pieces one after another, as a web stream (any runtime) that also carries a NODE_PUMP (each
 * piece through pumpBody, so a multipart answer is as bounded as a single range). Either way a
 * piece is opened only once the previous one was taken; a piece found gone errors the body.
 */
export function concatBodies(pieces: Piece[]): StreamBody {
  const open = async (piece: Piece): Promise<BlobBody> => {
    const body = piece instanceof Uint8Array ? piece : await piece();
    if (!body) throw new Error('blob removed while it was being sent');
    return body;
  };
  let next = 0;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  const stream: StreamBody = new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (;;) {
        if (reader) {
          const { done, value } = await reader.read();
          if (!done) return controller.enqueue(value);
          reader = undefined;
        }
        if (next === pieces.length) return controller.close();
        const body = await open(pieces[next++]);
        if (body instanceof Uint8Array) return controller.enqueue(body);
        reader = body.getReader();
      }
    },
    async cancel(reason) {
      await reader?.cancel(reason);
    },
  });
  const pump: NodePump = async (out) => {
    for (const piece of pieces) if (!(await pumpBody(await open(piece), out))) return false;
    return true;
  };
  stream[NODE_PUMP] = pump;
  return stream;
}
