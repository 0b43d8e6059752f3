#!/usr/bin/env node
// Compiles the depot-ai command to JavaScript once (npm's `prepare`, so at `npm ci`), so it does not
// transpile TypeScript at every start: cli/main.ts -> dist/cli/main.js, one file per command
// (code splitting keeps `--help` from loading the builder or the registry). Packages stay
// imports from node_modules. bin/depot-ai.js runs this output while it is newer than the sources.
import { build } from 'esbuild';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
await build({
  entryPoints: [path.join(root, 'cli/main.ts')],
  outdir: path.join(root, 'dist/cli'),
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  sourcemap: true,
  logLevel: 'warning',
});
