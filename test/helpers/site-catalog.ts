// A generated catalog of N models with facts, to hold the homepage to its size budget at any
// catalog size and to drive the list's filters and sorting in the browser.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

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

/** N models (every 7th without facts), deterministic; names like `org-12/model-name-345`. */
export function generatedModels(count: number): GeneratedModel[] {
  return Array.from({ length: count }, (_, i) => {
    const h = createHash('sha256').update(`model ${i}`).digest();
    const name = `org-${h[0] % 60}/model-${['alpha', 'beta', 'gamma', 'delta', 'vision', 'speech', 'embed'][h[1] % 7]}-${i}`;
    const sha = createHash('sha1').update(name).digest('hex');
    if (i % 7 === 3) return { name, sha };
    return { name, sha, task: TASKS[h[2] % TASKS.length], library: LIBRARIES[h[3] % LIBRARIES.length], downloads: h.readUInt32BE(4) % 10_000_000, bytes: h.readUInt32BE(8) * 16 };
  });
}

/** The catalog and facts.json of `generatedModels(count)` in a fixed temp folder (reused across runs). */
export async function generatedCatalog(count: number): Promise<{ catalog: string; models: GeneratedModel[] }> {
  const models = generatedModels(count);
  const dir = path.join(os.tmpdir(), `depot-ai-site-catalog-${count}-v1`);
  const catalog = path.join(dir, 'models.yaml');
  if (existsSync(catalog)) return { catalog, models };
  await mkdir(dir, { recursive: true });
  const facts = Object.fromEntries(
    models.filter((m) => m.task).map((m) => [m.name, { sha: m.sha, task: m.task, library: m.library, gated: false, downloads: m.downloads, likes: 1, files: 3, bytes: m.bytes }]),
  );
  await writeFile(path.join(dir, 'facts.json'), JSON.stringify({ updated: '2026-11-23T04:00:00.000Z', models: facts }, null, 2) + '\n');
  await writeFile(catalog, 'models:\n' + models.map((m) => `  - name: ${m.name}\n    sha: ${m.sha}\n`).join(''));
  return { catalog, models };
}
