// The benchmark model: ~256 MB of fp16 weights in a safetensors file, plus tokenizer and
// config JSON, written once into a folder and reused between runs.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { safetensors } from '../examples/safetensors.ts';

export function benchModel(dir: string, weightBytes = 256 * 1024 * 1024): string {
  const marker = path.join(dir, '.complete');
  if (existsSync(marker)) return dir;
  mkdirSync(dir, { recursive: true });
  const hidden = 4096;
  writeFileSync(path.join(dir, 'model.safetensors'), safetensors({ 'model.weight': [weightBytes / 2 / hidden, hidden] }));
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ model_type: 'llama', hidden_size: hidden, torch_dtype: 'float16' }, null, 2));
  const vocab = Object.fromEntries(Array.from({ length: 32000 }, (_, i) => [`tok${i.toString(36)}`, i]));
  writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify({ version: '1.0', model: { type: 'BPE', vocab } }));
  writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ model_max_length: 4096 }));
  writeFileSync(marker, '');
  return dir;
}
