// Fixtures for the site tests: a small catalog and a store with one model built by the real CLI.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './site.ts';

const run = promisify(execFile);

/** A store with no images: model pages render their "not built" state. */
export const EMPTY_STORE = path.join(os.tmpdir(), 'depot-ai-site-empty-store');

export const FIXTURE_HOST = 'registry.example.test:5000';
export const FIXTURE_CATALOG_TEXT = `models:
  - name: gpt2
    sha: 11c5a3d5811f50298f278a704980280950aedb10
    tag: latest
  - name: gpt2
    sha: 11c5a3d5811f50298f278a704980280950aedb10
    tag: v2
  - name: runwayml/stable-diffusion-v1-5
    sha: 1d0c4ebf6ff58a5caecab40fa1406526bca4b5b9
    tag: latest
`;

/** gpt2:latest, shaped like a transformers repository: the weights twice, tokenizer files, odd names. */
export const FIXTURE_FILES: Record<string, string> = {
  'config.json': '{"model_type":"gpt2"}\n',
  'model.safetensors': 'x'.repeat(70_000),
  'pytorch_model.bin': 'p'.repeat(70_000),
  'tokenizer.json': '{"version":"1.0"}\n',
  'vocab.json': '{"a":0}\n',
  'merges.txt': '#version: 0.2\n',
  'sub/read me.txt': 'hello\n',
  'deep/nested/dir/vocab-ünï.txt': 'a\nb\n',
  'weights[0].bin': 'the file the escaped line names\n',
  'weights0.bin': 'the sibling an unescaped glob would copy\n',
  'LICENSE': 'MIT License\n',
};

/** runwayml/stable-diffusion-v1-5:latest, shaped like a diffusers repository: fp16 and fp32 weights per component, a root checkpoint. */
export const FIXTURE_DIFFUSERS: Record<string, string> = {
  'model_index.json': '{"_class_name":"StableDiffusionPipeline"}\n',
  'v1-5-pruned.ckpt': 'c'.repeat(40_000),
  'scheduler/scheduler_config.json': '{}\n',
  'text_encoder/config.json': '{}\n',
  'text_encoder/model.safetensors': 't'.repeat(8_000),
  'text_encoder/model.fp16.safetensors': 'h'.repeat(4_000),
  'tokenizer/vocab.json': '{"a":0}\n',
  'tokenizer/merges.txt': '#version: 0.2\n',
  'unet/config.json': '{}\n',
  'unet/diffusion_pytorch_model.safetensors': 'u'.repeat(20_000),
  'unet/diffusion_pytorch_model.fp16.safetensors': 'f'.repeat(10_000),
  'unet/diffusion_pytorch_model.bin': 'b'.repeat(20_000),
  'vae/config.json': '{}\n',
  'vae/diffusion_pytorch_model.safetensors': 'v'.repeat(6_000),
};

/** Facts as `models update` writes them, for gpt2 (built) and the diffusers model; none for others. */
export const FIXTURE_FACTS = {
  updated: '2026-11-23T04:00:00.000Z',
  models: {
    gpt2: { sha: '11c5a3d5811f50298f278a704980280950aedb10', task: 'text-generation', library: 'transformers', license: 'mit', gated: false, parameters: 137_022_720, downloads: 12_345_678, likes: 2_890, files: 11, bytes: 140_200 },
    'runwayml/stable-diffusion-v1-5': { sha: '1d0c4ebf6ff58a5caecab40fa1406526bca4b5b9', task: 'text-to-image', library: 'diffusers', license: 'creativeml-openrail-m', gated: false, downloads: 3_456, likes: 11_000, files: 14, bytes: 88_200 },
  },
};

/**
 * A catalog (gpt2 with two tags, one other model) and a store in which gpt2:latest and
 * runwayml/stable-diffusion-v1-5:latest are built with `depot-ai build` from FIXTURE_FILES and
 * FIXTURE_DIFFUSERS. Paths are fixed so site builds over them can be cached.
 */
export async function builtFixture(): Promise<{ catalog: string; store: string }> {
  const key = createHash('sha256').update(JSON.stringify([FIXTURE_CATALOG_TEXT, FIXTURE_FILES, FIXTURE_DIFFUSERS, FIXTURE_FACTS])).digest('hex').slice(0, 12);
  const dir = path.join(os.tmpdir(), `depot-ai-site-fixture-${key}`);
  const catalog = path.join(dir, 'models.yaml');
  const store = path.join(dir, 'store');
  const done = path.join(dir, '.complete');
  if (existsSync(done)) return { catalog, store };
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await writeFile(catalog, FIXTURE_CATALOG_TEXT);
  await writeFile(path.join(dir, 'facts.json'), JSON.stringify(FIXTURE_FACTS, null, 2) + '\n');
  for (const [name, files, sha] of [
    ['gpt2', FIXTURE_FILES, '11c5a3d5811f50298f278a704980280950aedb10'],
    ['runwayml/stable-diffusion-v1-5', FIXTURE_DIFFUSERS, '1d0c4ebf6ff58a5caecab40fa1406526bca4b5b9'],
  ] as const) {
    const source = path.join(dir, 'source', name);
    for (const [file, content] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(source, file)), { recursive: true });
      await writeFile(path.join(source, file), content);
    }
    await run(process.execPath, [path.join(ROOT, 'bin/depot-ai.js'), 'build', name, '--from', source, '--store', store, '--tag', 'latest', '--sha', sha], { cwd: ROOT });
  }
  await writeFile(done, '');
  return { catalog, store };
}
