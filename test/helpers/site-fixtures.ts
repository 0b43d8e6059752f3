// Fixtures for the site tests: a small catalog, its facts fetched from the Hub stand-in, and a
// store with two models built by the real CLI.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { depotAi } from './cli.ts';
import { startHubServer, type HubRepoSpec } from './hub-server.ts';

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

/**
 * What the Hub stand-in states about the two repositories (pipeline_tag, library_name, the card's
 * license, the safetensors parameter total, downloads, likes). `models update` fetches it through
 * @huggingface/hub and writes facts.json, as the weekly workflow does; no facts are hand-written.
 */
export const FIXTURE_HUB: Record<string, Pick<HubRepoSpec, 'pipelineTag' | 'libraryName' | 'license' | 'parameters' | 'downloads' | 'likes'>> = {
  gpt2: { pipelineTag: 'text-generation', libraryName: 'transformers', license: 'mit', parameters: 137_022_720, downloads: 12_345_678, likes: 2_890 },
  'runwayml/stable-diffusion-v1-5': { pipelineTag: 'text-to-image', libraryName: 'diffusers', license: 'creativeml-openrail-m', downloads: 3_456, likes: 11_000 },
};

const FIXTURE_REPOS = [
  ['gpt2', FIXTURE_FILES, '11c5a3d5811f50298f278a704980280950aedb10'],
  ['runwayml/stable-diffusion-v1-5', FIXTURE_DIFFUSERS, '1d0c4ebf6ff58a5caecab40fa1406526bca4b5b9'],
] as const;

/**
 * A catalog (gpt2 with two tags, one other model), its facts.json written by `depot-ai models
 * update` against the Hub stand-in serving FIXTURE_HUB, and a store in which gpt2:latest and
 * runwayml/stable-diffusion-v1-5:latest are built with `depot-ai build` from FIXTURE_FILES and
 * FIXTURE_DIFFUSERS (each also under its revision tag, the catalog's sha). Paths are fixed so
 * site builds over them can be cached.
 */
export async function builtFixture(): Promise<{ catalog: string; store: string }> {
  const key = createHash('sha256').update(JSON.stringify([FIXTURE_CATALOG_TEXT, FIXTURE_FILES, FIXTURE_DIFFUSERS, FIXTURE_HUB, 'with revision tags'])).digest('hex').slice(0, 12);
  const dir = path.join(os.tmpdir(), `depot-ai-site-fixture-${key}`);
  const catalog = path.join(dir, 'models.yaml');
  const store = path.join(dir, 'store');
  const done = path.join(dir, '.complete');
  if (existsSync(done)) return { catalog, store };
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await writeFile(catalog, FIXTURE_CATALOG_TEXT);
  const hub = await startHubServer({ repos: FIXTURE_REPOS.map(([name, files, sha]) => ({ name, commits: [{ sha, files }], ...FIXTURE_HUB[name] })) });
  try {
    const update = await depotAi(['models', 'update', catalog], { HF_ENDPOINT: hub.url, HF_TOKEN: '', DEPOT_HUB_RETRIES: '0' });
    if (update.status !== 0) throw new Error(`models update failed (${update.status}):\n${update.stderr}`);
  } finally {
    await hub.close();
  }
  for (const [name, files, sha] of FIXTURE_REPOS) {
    const source = path.join(dir, 'source', name);
    for (const [file, content] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(source, file)), { recursive: true });
      await writeFile(path.join(source, file), content);
    }
    const build = await depotAi(['build', name, '--from', source, '--store', store, '--tag', 'latest', '--sha', sha]);
    if (build.status !== 0) throw new Error(`depot-ai build ${name} failed (${build.status}):\n${build.stderr}`);
  }
  await writeFile(done, '');
  return { catalog, store };
}
