// Downloads kept by content hash: `<cache>/<algorithm>/<hex>` appears only once its size and hash
// are verified. A download in progress lives in `<cache>/partial/` and is resumed from where it
// stopped (its bytes are re-hashed first), so a re-run fetches nothing it already has.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat, truncate } from 'node:fs/promises';
import path from 'node:path';
import { SourceError } from './folder.ts';
import { isTransientNetworkError, withRetries } from '../client/retry.ts';

/** The content cache folder when neither --cache nor DEPOT_CACHE says another. */
export const DEFAULT_CACHE = '.depot/cache';

/** What a file must be: sha256 of its bytes (LFS) or the git blob id (other files), and its size. */
export interface ContentKey {
  algorithm: 'sha256' | 'git-sha1';
  hex: string;
  size: number;
}

/** A body to append, starting at byte `from` of the file (0 when the server ignored the range). */
export interface Body {
  from: number;
  body: AsyncIterable<Uint8Array>;
}

/** The bytes do not match the expected hash or size: the source is corrupt, not flaky. */
export class VerifyError extends SourceError {}

/** An error a retry may get past (HTTP 5xx, 429, a cut body). */
export class TransientError extends Error {}

export class ContentCache {
  private readonly running = new Map<string, Promise<string>>();

  constructor(readonly dir: string) {}

  path(key: ContentKey): string {
    return path.join(this.dir, key.algorithm, key.hex);
  }

  async has(key: ContentKey): Promise<boolean> {
    return (await stat(this.path(key)).catch(() => undefined))?.size === key.size;
  }

  /** The verified file for `key`, fetched with `open` unless the cache has it. `label` names it in errors. */
  fetch(key: ContentKey, label: string, open: (offset: number) => Promise<Body>, onBytes?: (bytes: number) => void): Promise<string> {
    const id = `${key.algorithm}/${key.hex}`;
    let running = this.running.get(id);
    if (!running) {
      running = this.download(key, label, open, onBytes).finally(() => this.running.delete(id));
      this.running.set(id, running);
    }
    return running;
  }

  private async download(key: ContentKey, label: string, openBody: (offset: number) => Promise<Body>, onBytes?: (bytes: number) => void): Promise<string> {
    const final = this.path(key);
    if (await this.has(key)) {
      onBytes?.(key.size);
      return final;
    }
    const partial = path.join(this.dir, 'partial', `${key.algorithm}-${key.hex}`);
    await mkdir(path.dirname(partial), { recursive: true });
    await mkdir(path.dirname(final), { recursive: true });
    let reported = 0;
    const report = (total: number) => {
      onBytes?.(total - reported);
      reported = total;
    };
    await withRetries(
      async () => {
        let offset = (await stat(partial).catch(() => undefined))?.size ?? 0;
        if (offset > key.size) {
          await truncate(partial, 0);
          offset = 0;
        }
        let hash = contentHasher(key);
        if (offset > 0) for await (const chunk of createReadStream(partial, { end: offset - 1 })) hash.update(chunk as Buffer);
        const { from, body } = offset < key.size ? await openBody(offset) : { from: offset, body: emptyBody() };
        if (from !== offset) {
          // The server ignored the range and sent the whole file: start over.
          offset = 0;
          hash = contentHasher(key);
        }
        await this.appendFrom(partial, offset, key, label, body, hash, report);
      },
      { retryable: (error) => error instanceof TransientError || isTransientNetworkError(error) },
    );
    await rename(partial, final);
    return final;
  }

  /** Append `body` to the partial file at `offset`, then check size and hash (a mismatch deletes it). */
  private async appendFrom(partial: string, offset: number, key: ContentKey, label: string, body: AsyncIterable<Uint8Array>, hash: Hash, report: (total: number) => void): Promise<void> {
    const handle = await open(partial, offset === 0 ? 'w' : 'r+');
    let written = offset;
    report(written);
    try {
      for await (const received of body) {
        const chunk = received.subarray(0, key.size - written);
        await handle.write(chunk, 0, chunk.length, written);
        hash.update(chunk);
        written += chunk.length;
        if (written === key.size) break;
        report(written);
      }
    } finally {
      await handle.close();
    }
    if (written < key.size) throw new TransientError(`${label}: download ended after ${written} of ${key.size} bytes`);
    const actual = hash.digest('hex');
    if (actual !== key.hex) {
      await rm(partial, { force: true });
      throw new VerifyError(`${label}: ${key.algorithm === 'sha256' ? 'sha256' : 'git blob id'} mismatch: expected ${key.hex}, got ${actual}`);
    }
  }
}

/** The hash a key names: sha256 of the bytes, or git's blob id (sha1 over "blob SIZE\0" and the bytes). */
export function contentHasher(key: ContentKey): Hash {
  if (key.algorithm === 'sha256') return createHash('sha256');
  return createHash('sha1').update(`blob ${key.size}\0`);
}

async function* emptyBody(): AsyncIterable<Uint8Array> {}
