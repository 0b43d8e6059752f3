#!/usr/bin/env node
// The depot-ai command. It runs the JavaScript compiled at install time (scripts/build-cli.js,
// npm's `prepare`) while that is newer than every TypeScript source it was built from; in a
// checkout with edits since, it runs the TypeScript through tsx instead, so it is never stale.
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const compiled = path.join(root, 'dist/cli/main.js');
const SOURCES = ['cli', 'builder', 'client', 'image', 'models', 'registry', 'sources', 'trust', 'examples'];

function newestSource() {
  let newest = 0;
  for (const dir of SOURCES) {
    for (const name of readdirSync(path.join(root, dir), { recursive: true })) {
      if (name.endsWith('.ts')) newest = Math.max(newest, statSync(path.join(root, dir, name)).mtimeMs);
    }
  }
  return newest;
}

const builtAt = statSync(compiled, { throwIfNoEntry: false })?.mtimeMs ?? 0;
let main;
if (builtAt > newestSource()) {
  ({ main } = await import(compiled));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../cli/main.ts'));
}
process.exitCode = await main(process.argv.slice(2));
