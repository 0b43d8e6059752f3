// Verify, then trust: a blob stream that is checked against its descriptor before its last bytes
// are handed on, and gzip inflation that stops at the size the caller expects.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { Descriptor } from '../image/oci.ts';
import { RemoteError } from './errors.ts';

/**
 * A pass-through that hashes (sha256) and counts the bytes of `expected`. It holds back the
 * latest chunk until the next one arrives, so a consumer never receives the final chunk of a blob
 * whose digest or size is wrong: the stream errors with RemoteError instead (at once when more
 * than `expected.size` bytes arrive).
 */
export function verifyingStream(expected: Pick<Descriptor, 'digest' | 'size'>, what: string): TransformStream<Uint8Array, Uint8Array> {
  const hash = createHash('sha256');
  let size = 0;
  let held: Uint8Array | undefined;
  return new TransformStream({
    transform(chunk, controller) {
      size += chunk.length;
      if (size > expected.size) throw new RemoteError(`${what}: more than the ${expected.size} bytes its descriptor states`);
      hash.update(chunk);
      if (held) controller.enqueue(held);
      held = chunk;
    },
    flush(controller) {
      const digest = `sha256:${hash.digest('hex')}`;
      if (size !== expected.size || digest !== expected.digest) throw new RemoteError(`${what}: got ${size} bytes with digest ${digest}, expected ${expected.size} bytes with ${expected.digest}`);
      if (held) controller.enqueue(held);
    },
  });
}

/**
 * Inflate `compressed` (gzip, one or more members) as it streams and hand its first `length`
 * bytes to `sink` piece by piece, inflating no further: whatever `length` claims, memory holds
 * one piece at a time (a gzip bomb costs at most `length` bytes of output, never of memory).
 * Returns the sha256 digest of those bytes. RemoteError naming `what` when it is not gzip or
 * inflates to fewer bytes; errors of `compressed` and `sink` pass through.
 */
export async function gunzipPrefix(compressed: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, length: number, what: string, sink: (piece: Buffer) => Promise<void>): Promise<string> {
  const source = Readable.from(compressed, { objectMode: false });
  const gunzip = createGunzip();
  let failure: unknown;
  source.once('error', (error) => gunzip.destroy((failure = error)));
  source.pipe(gunzip);
  const hash = createHash('sha256');
  let got = 0;
  try {
    for await (const piece of gunzip as AsyncIterable<Buffer>) {
      const take = piece.subarray(0, length - got);
      hash.update(take);
      got += take.length;
      await sink(take).catch((error) => {
        throw (failure = error);
      });
      if (got >= length) break;
    }
  } catch (error) {
    throw failure ?? (error instanceof RemoteError ? error : new RemoteError(`${what} is not valid gzip: ${(error as Error).message}`));
  } finally {
    source.destroy();
    gunzip.destroy();
  }
  if (got < length) throw new RemoteError(`${what} inflates to ${got} bytes, fewer than the ${length} its TOC states`);
  return `sha256:${hash.digest('hex')}`;
}
