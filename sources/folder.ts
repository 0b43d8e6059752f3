// Sources of a model's files. A source lists files (sorted, with sizes) and reads each one
// once, in chunks of exactly the layer's chunk size, so the layer writer never re-buffers.
import { open, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { readAt } from '../image/read-at.ts';
import type { ModelSource, SourceFile } from '../image/source.ts';
import { isExcluded } from '../models/repository.ts';

export type { ModelSource, SourceFile };


export class SourceError extends Error {}

/** A local folder. Symbolic links are followed (a Hugging Face cache snapshot is made of them). */
export class FolderSource implements ModelSource {
  constructor(readonly root: string) {}

  async list(): Promise<SourceFile[]> {
    const rootStat = await stat(this.root).catch(() => undefined);
    if (!rootStat?.isDirectory()) throw new SourceError(`${this.root} is not a folder`);
    const files: SourceFile[] = [];
    const walk = async (dir: string, prefix: string): Promise<void> => {
      let names: string[];
      try {
        names = await readdir(dir);
      } catch (error) {
        throw new SourceError(`cannot read folder ${dir}: ${(error as NodeJS.ErrnoException).code}`);
      }
      for (const name of names) {
        const relative = prefix ? `${prefix}/${name}` : name;
        if (isExcluded(relative)) continue;
        const full = path.join(dir, name);
        const info = await stat(full).catch((error: NodeJS.ErrnoException) => {
          throw new SourceError(`cannot read ${full}: ${error.code === 'ENOENT' ? 'broken symbolic link' : error.code}`);
        });
        if (info.isDirectory()) await walk(full, relative);
        else if (info.isFile()) files.push({ path: relative, size: info.size });
        else throw new SourceError(`${full} is neither a file nor a folder`);
      }
    };
    await walk(this.root, '');
    return files;
  }

  chunks(file: SourceFile, chunkSize: number): AsyncIterable<Buffer> {
    return readFileChunks(path.join(this.root, ...file.path.split('/')), file.size, chunkSize);
  }
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
