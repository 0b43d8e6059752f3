// A model of any size that is never held whole anywhere: fp16 weight shards generated on demand
// (a 4 MiB block of normal samples, rotated by a different offset in every block, so no two
// 4 MiB chunks are alike), served by the Hub stand-in and read by a ModelSource for the local
// reference build (the layer writer's output hashed, not stored).
import { normalFp16 } from '../../examples/safetensors.ts';
import type { ModelSource, SourceFile } from '../../image/source.ts';
import { generatedFile, type GeneratedFile } from './hub-server.ts';

const BLOCK = 4 << 20;
const SHARD = 1 << 30;

/** `size` bytes of fp16-like weights, the same for the same seed. */
export function generatedWeights(size: number, seed: number): GeneratedFile {
  const base = normalFp16(BLOCK / 2, seed);
  return generatedFile(size, (start, end) => {
    const out = Buffer.allocUnsafe(end - start);
    for (let at = start; at < end; ) {
      const block = Math.floor(at / BLOCK);
      const stop = Math.min(end, (block + 1) * BLOCK);
      // Byte `at` of the file is byte (at + 2 * block * 1031) mod BLOCK of the base block.
      let from = (at + 2 * block * 1031) % BLOCK;
      for (let put = at; put < stop; ) {
        const take = Math.min(stop - put, BLOCK - from);
        base.copy(out, put - start, from, from + take);
        put += take;
        from = 0;
      }
      at = stop;
    }
    return out;
  });
}

/** A Hugging Face style model of about `bytes`: config, tokenizer and 1 GiB weight shards. */
export function bigModel(bytes: number): Record<string, string | GeneratedFile> {
  const shards = Math.max(1, Math.ceil(bytes / SHARD));
  const files: Record<string, string | GeneratedFile> = {
    'config.json': JSON.stringify({ model_type: 'llama', hidden_size: 4096, torch_dtype: 'float16' }),
    'tokenizer.json': JSON.stringify({ model: { vocab: Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`tok${i}`, i])) } }),
  };
  for (let i = 1; i <= shards; i++) {
    const size = i < shards ? SHARD : bytes - SHARD * (shards - 1);
    files[`model-${String(i).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`] = generatedWeights(size, i);
  }
  return files;
}

/** The same files as a ModelSource, for the local build the streamed push must equal. */
export function generatedSource(files: Record<string, string | GeneratedFile>): ModelSource {
  const read = (path: string, start: number, end: number) => {
    const value = files[path];
    return typeof value === 'string' ? Buffer.from(value).subarray(start, end) : value.read(start, end);
  };
  const size = (value: string | GeneratedFile) => (typeof value === 'string' ? Buffer.byteLength(value) : value.size);
  return {
    list: async () => Object.entries(files).map(([path, value]) => ({ path, size: size(value) })),
    async *chunks(file: SourceFile, chunkSize: number) {
      for (let start = 0; start < file.size; start += chunkSize) yield read(file.path, start, Math.min(file.size, start + chunkSize));
    },
  };
}
