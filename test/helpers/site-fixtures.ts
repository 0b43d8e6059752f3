// Fixtures for the site tests: a small catalog and a store with one model built by the real CLI.
import { execFile } from 'node:child_process';
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

export const FIXTURE_FILES: Record<string, string> = {
  'config.json': '{"model_type":"gpt2"}\n',
  'model.safetensors': 'x'.repeat(70_000),
  'sub/read me.txt': 'hello\n',
  'deep/nested/dir/vocab-ünï.txt': 'a\nb\n',
};

/**
 * A catalog (gpt2 with two tags, one other model) and a store in which gpt2:latest is built with
 * `depot-ai build` from FIXTURE_FILES. Paths are fixed so site builds over them can be cached.
 */
export async function builtFixture(): Promise<{ catalog: string; store: string }> {
  const dir = path.join(os.tmpdir(), 'depot-ai-site-fixture');
  const catalog = path.join(dir, 'models.yaml');
  const store = path.join(dir, 'store');
  const done = path.join(dir, '.complete');
  if (existsSync(done)) return { catalog, store };
  await rm(dir, { recursive: true, force: true });
  const source = path.join(dir, 'source');
  for (const [name, content] of Object.entries(FIXTURE_FILES)) {
    await mkdir(path.dirname(path.join(source, name)), { recursive: true });
    await writeFile(path.join(source, name), content);
  }
  await writeFile(catalog, FIXTURE_CATALOG_TEXT);
  await run(process.execPath, [path.join(ROOT, 'bin/depot-ai.js'), 'build', 'gpt2', '--from', source, '--store', store, '--tag', 'latest', '--sha', '11c5a3d5811f50298f278a704980280950aedb10'], { cwd: ROOT });
  await writeFile(done, '');
  return { catalog, store };
}
