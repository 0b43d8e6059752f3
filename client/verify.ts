// Verify, then trust: a blob stream that is checked against its descriptor before its last bytes
// are handed on, and gzip inflation that stops at the size the caller expects.
import { createHash } from 'node:crypto';
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
 * The first `length` bytes `compressed` (gzip, one or more members) inflates to, inflating no
 * further: a gzip bomb costs at most `length` bytes of memory. RemoteError naming `what` when it
 * is not gzip or inflates to fewer bytes.
 */
export async function gunzipPrefix(compressed: Uint8Array, length: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  const gunzip = createGunzip();
  await new Promise<void>((resolve, reject) => {
    gunzip.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      got += chunk.length;
      if (got >= length) {
        gunzip.destroy();
        resolve();
      }
    });
    gunzip.on('end', resolve);
    gunzip.on('error', (error) => reject(new RemoteError(`${what} is not valid gzip: ${error.message}`)));
    gunzip.end(compressed);
  });
  if (got < length) throw new RemoteError(`${what} inflates to ${got} bytes, fewer than the ${length} its TOC states`);
  return Buffer.concat(chunks, got).subarray(0, length);
}
