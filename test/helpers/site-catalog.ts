// Generated catalogs with facts, to hold the homepage to its size budget at any catalog size and to
// drive the list's filters and sorting in the browser: N generated models, or the real catalog's
// names with generated facts (the committed facts.json is empty where the Hub is unreachable).
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadCatalog } from '../../models/catalog.ts';

const TASKS = ['text-generation', 'text-to-image', 'feature-extraction', 'automatic-speech-recognition', 'image-classification', 'fill-mask'];
const LIBRARIES = ['transformers', 'diffusers', 'sentence-transformers', 'timm', 'gguf'];

export interface GeneratedModel {
  name: string;
  sha: string;
  task?: string;
  library?: string;
  downloads?: number;
  bytes?: number;
}

const hashOf = (i: number) => createHash('sha256').update(`model ${i}`).digest();

/** The i-th model's facts, deterministic; every 7th model has none. */
function withFacts(i: number, name: string, sha: string): GeneratedModel {
  if (i % 7 === 3) return { name, sha };
  const h = hashOf(i);
  return { name, sha, task: TASKS[h[2] % TASKS.length], library: LIBRARIES[h[3] % LIBRARIES.length], downloads: h.readUInt32BE(4) % 10_000_000, bytes: h.readUInt32BE(8) * 16 };
}

/** N models, deterministic; names like `org-12/model-name-345`. */
export function generatedModels(count: number): GeneratedModel[] {
  return Array.from({ length: count }, (_, i) => {
    const h = hashOf(i);
    const name = `org-${h[0] % 60}/model-${['alpha', 'beta', 'gamma', 'delta', 'vision', 'speech', 'embed'][h[1] % 7]}-${i}`;
    return withFacts(i, name, createHash('sha1').update(name).digest('hex'));
  });
}

/** Write models.yaml and facts.json (as `models update` shapes it) for `models` into a fixed temp folder named `key` (reused across runs). */
async function writeCatalog(key: string, models: GeneratedModel[]): Promise<string> {
  const dir = path.join(os.tmpdir(), `depot-ai-site-catalog-${key}`);
  const catalog = path.join(dir, 'models.yaml');
  if (existsSync(catalog)) return catalog;
  await mkdir(dir, { recursive: true });
  const facts = Object.fromEntries(
    models.filter((m) => m.task).map((m) => [m.name, { sha: m.sha, task: m.task, library: m.library, gated: false, downloads: m.downloads, likes: 1, files: 3, bytes: m.bytes }]),
  );
  await writeFile(path.join(dir, 'facts.json'), JSON.stringify({ updated: '2026-11-23T04:00:00.000Z', models: facts }, null, 2) + '\n');
  await writeFile(catalog, 'models:\n' + models.map((m) => `  - name: ${m.name}\n    sha: ${m.sha}\n`).join(''));
  return catalog;
}

/** The catalog and facts.json of `generatedModels(count)`. */
export async function generatedCatalog(count: number): Promise<{ catalog: string; models: GeneratedModel[] }> {
  const models = generatedModels(count);
  return { catalog: await writeCatalog(`${count}-v1`, models), models };
}

/** The real catalog's models (one per name, first sha) with generated facts: the homepage as it is once facts are fetched. */
export async function realCatalogWithFacts(real: string): Promise<{ catalog: string; models: GeneratedModel[] }> {
  const seen = new Set<string>();
  const entries = (await loadCatalog(real)).filter((e) => !seen.has(e.name) && seen.add(e.name));
  const models = entries.map((e, i) => withFacts(i, e.name, e.sha));
  const key = createHash('sha256').update(JSON.stringify(models)).digest('hex').slice(0, 12);
  return { catalog: await writeCatalog(`real-${key}`, models), models };
}
