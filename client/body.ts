// Reading a response body whole, with a ceiling: a registry that claims or sends more than the
// caller will hold is cut off before the bytes pile up in memory.
import { RemoteError } from './errors.ts';

/**
 * The whole body of `response` as a Buffer of at most `max` bytes; `what` names it in errors.
 * Throws RemoteError (and cancels the body) when Content-Length or the bytes sent exceed `max`.
 */
export async function readBounded(response: Response, max: number, what: string): Promise<Buffer> {
  const tooLarge = () => new RemoteError(`${what} is larger than the ${max} bytes allowed`);
  if (Number(response.headers.get('content-length') ?? 0) > max) {
    await response.body?.cancel().catch(() => {});
    throw tooLarge();
  }
  if (!response.body) return Buffer.alloc(0);
  const chunks: Uint8Array[] = [];
  let length = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    length += value.length;
    if (length > max) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, length);
}
