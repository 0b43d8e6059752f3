// Model folders for tests, made on the spot.
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export function tempDir(prefix = 'depot-test-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

/** Write `files` (relative path -> content) under a new temp folder and return it. */
export function modelDir(files: Record<string, string | Buffer>, dir = tempDir('depot-model-')): string {
  for (const [relative, content] of Object.entries(files)) {
    const full = path.join(dir, relative);
    mkdirSync(path.dirname(full), { recursive: true });
    writeFileSync(full, content);
  }
  return dir;
}

/** Deterministic pseudo-random bytes (xorshift), so sizes and digests are stable between runs. */
export function pseudoRandomBytes(length: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
