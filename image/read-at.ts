// Positional reads that do not stop at a short read: the file system may return fewer bytes
// than asked for, so every caller that wants "these bytes" loops the same way.
import type { FileHandle } from 'node:fs/promises';

/** Up to `length` bytes of the file at `position`; fewer only where the file ends. */
export async function readAt(handle: FileHandle, length: number, position: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(Math.max(0, length));
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(buffer, filled, length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled === length ? buffer : buffer.subarray(0, filled);
}
