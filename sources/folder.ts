// Sources of a model's files. A source lists files (sorted, with sizes) and reads each one
// once, in chunks of exactly the layer's chunk size, so the layer writer never re-buffers.
import { lstat, open, readdir, readlink, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { readAt } from '../image/read-at.ts';
import type { ModelSource, SourceFile } from '../image/source.ts';
import { isExcluded } from '../models/repository.ts';

export type { ModelSource, SourceFile };


export class SourceError extends Error {}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Where a folder's symbolic links may point: inside the folder itself or, for a Hugging Face
 * cache snapshot (`.../models--owner--name/snapshots/<sha>/`, whose files are links into
 * `../../blobs/`), inside that one repository's cache folder. Real paths, links resolved.
 */
function linkBoundary(realRoot: string): string {
  const snapshots = path.dirname(realRoot);
  const repo = path.dirname(snapshots);
  const isSnapshot = path.basename(snapshots) === 'snapshots' && /^(models|datasets|spaces)--/.test(path.basename(repo));
  return isSnapshot ? repo : realRoot;
}

const isInside = (boundary: string, target: string) => target === boundary || target.startsWith(boundary + path.sep);

/**
 * A local folder. Symbolic links are followed as long as they resolve inside the folder (or, for a
 * Hugging Face cache snapshot, inside its repository's cache folder, where its links point);
 * a link leading anywhere else is an error naming the link, so no host file enters an image unasked.
 */
export class FolderSource implements ModelSource {
  /** Each listed file's real path, read from there (not through the link again). */
  private realPaths = new Map<string, string>();

  constructor(readonly root: string) {}

  async list(): Promise<SourceFile[]> {
    const rootStat = await stat(this.root).catch(() => undefined);
    if (!rootStat?.isDirectory()) throw new SourceError(`${this.root} is not a folder`);
    const realRoot = await realpath(this.root);
    const boundary = linkBoundary(realRoot);
    const files: SourceFile[] = [];
    this.realPaths.clear();
    const walk = async (dir: string, realDir: string, prefix: string, seen: Set<string>): Promise<void> => {
      let raw: Buffer[];
      try {
        raw = await readdir(realDir, { encoding: 'buffer' });
      } catch (error) {
        throw new SourceError(`cannot read folder ${dir}: ${(error as NodeJS.ErrnoException).code}`);
      }
      for (const bytes of raw) {
        const name = utf8Name(dir, bytes);
        const relative = prefix ? `${prefix}/${name}` : name;
        if (isExcluded(relative)) continue;
        const full = path.join(dir, name);
        const real = await resolveEntry(full, path.join(realDir, name), boundary, realRoot);
        const info = await stat(real);
        if (info.isDirectory()) {
          if (seen.has(real)) throw new SourceError(`${full}: symbolic link back to ${real}, a folder above it (a loop)`);
          await walk(full, real, relative, new Set(seen).add(real));
        } else if (info.isFile()) {
          files.push({ path: relative, size: info.size });
          this.realPaths.set(relative, real);
        } else throw new SourceError(`${full} is neither a file nor a folder`);
      }
    };
    await walk(this.root, realRoot, '', new Set([realRoot]));
    return files;
  }

  chunks(file: SourceFile, chunkSize: number): AsyncIterable<Buffer> {
    return readFileChunks(this.realPaths.get(file.path) ?? path.join(this.root, ...file.path.split('/')), file.size, chunkSize);
  }
}

/** A directory entry's name as a string, or an error when its bytes are not UTF-8 (tar and OCI paths are). */
function utf8Name(dir: string, bytes: Buffer): string {
  try {
    return UTF8.decode(bytes);
  } catch {
    throw new SourceError(
      `${path.join(dir, bytes.toString('latin1'))}: file name is not valid UTF-8 (bytes ${bytes.toString('hex')}); rename it, image paths must be UTF-8`,
    );
  }
}

/** The entry's real path; an error for a broken link or one that resolves outside `boundary`. */
async function resolveEntry(full: string, entry: string, boundary: string, realRoot: string): Promise<string> {
  const info = await lstat(entry).catch((error: NodeJS.ErrnoException) => {
    throw new SourceError(`cannot read ${full}: ${error.code}`);
  });
  if (!info.isSymbolicLink()) return entry;
  const target = await readlink(entry);
  const real = await realpath(entry).catch((error: NodeJS.ErrnoException) => {
    throw new SourceError(`${full}: broken symbolic link, its target ${target} ${error.code === 'ENOENT' ? 'does not exist' : `cannot be read (${error.code})`}`);
  });
  if (!isInside(boundary, real)) {
    const allowed = boundary === realRoot ? realRoot : `${realRoot} and its Hugging Face cache folder ${boundary}`;
    throw new SourceError(`${full}: symbolic link to ${real}, outside ${allowed}; copy the file in or remove the link`);
  }
  return real;
}

/** The first `size` bytes of a file on disk, in buffers of exactly `chunkSize` (the last one shorter). */
export async function* readFileChunks(full: string, size: number, chunkSize: number): AsyncIterable<Buffer> {
  const handle = await open(full, 'r').catch((error: NodeJS.ErrnoException) => {
    throw new SourceError(`cannot read ${full}: ${error.code}`);
  });
  try {
    for (let position = 0; position < size; ) {
      const length = Math.min(chunkSize, size - position);
      const buffer = await readAt(handle, length, position);
      if (buffer.length < length) throw new SourceError(`${full} became shorter while it was read`);
      position += length;
      yield buffer;
    }
  } finally {
    await handle.close();
  }
}
