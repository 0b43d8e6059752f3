// Positional reads that do not stop at a short read: the file system may return fewer bytes
// than asked for, so every caller that wants "these bytes" loops the same way.
import { open, type FileHandle } from 'node:fs/promises';
import type { ReadAt } from './toc.ts';

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

/** A ReadAt over a local file. */
export async function fileReadAt(file: string): Promise<{ readAt: ReadAt; size: number; close(): Promise<void> }> {
  const handle = await open(file, 'r');
  const { size } = await handle.stat();
  return {
    size,
    readAt: (offset, length) => readAt(handle, length, offset),
    close: () => handle.close(),
  };
}
