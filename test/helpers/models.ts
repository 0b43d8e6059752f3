// Model folders for tests, made on the spot.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const made: string[] = [];
// Each test file runs in a process of its own: its temp folders go when it exits (a folder a
// test still has mounted or in use is left, not an error), so runs do not fill /tmp.
process.once('exit', () => {
  for (const dir of made) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 2 });
    } catch {
      // kept
    }
  }
});

/** A new folder under the OS temp folder, removed when the test process exits. */
export function tempDir(prefix = 'depot-test-'): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  made.push(dir);
  return dir;
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
