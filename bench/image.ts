// Image builder benchmark: our eStargz writer against the reference Go estargz.Build
// (gzip level 6, BuildKit's default, and 4 MiB chunks) on the same deterministic model.
import { execFileSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT } from '../test/helpers/cli.ts';
import { benchModel } from './model.ts';

const RUNS = 2;
const MB = 1e6;

interface OurRun {
  seconds: number;
  compressedSize: number;
  inputBytes: number;
  maxRssBytes: number;
}

function ours(dir: string): OurRun {
  const store = path.join(tmpdir(), `depot-bench-store-${process.pid}`);
  rmSync(store, { recursive: true, force: true });
  try {
    const out = execFileSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench/build-child.ts'), dir, store], { cwd: ROOT, encoding: 'utf8' });
    return JSON.parse(out) as OurRun;
  } finally {
    rmSync(store, { recursive: true, force: true });
  }
}

function reference(tar: string): { seconds: number; size: number } {
  const output = `${tar}.estargz`;
  try {
    const out = execFileSync(path.join(ROOT, 'tools/bin/estargz-build'), ['-level', '6', '-chunk-size', String(4 << 20), tar, output], { encoding: 'utf8' });
    return JSON.parse(out) as { seconds: number; size: number };
  } finally {
    rmSync(output, { force: true });
  }
}

const best = <T extends { seconds: number }>(runs: T[]): T => runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));

export async function benchImage(): Promise<void> {
  const work = path.join(tmpdir(), 'depot-bench');
  const dir = benchModel(path.join(work, 'model'));
  const tar = path.join(work, 'model.tar');
  if (!existsSync(tar)) {
    execFileSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '--exclude=.complete', '-cf', tar, '-C', dir, '.']);
  }

  const our = best(Array.from({ length: RUNS }, () => ours(dir)));
  const ref = best(Array.from({ length: RUNS }, () => reference(tar)));
  const input = our.inputBytes;
  const ourRate = input / our.seconds / MB;
  const refRate = input / ref.seconds / MB;
  const sizeDelta = (100 * (our.compressedSize - ref.size)) / ref.size;
  console.log(`\n## Image build (${(input / MB).toFixed(0)} MB model: fp16 normal weights, tokenizer, config; best of ${RUNS})`);
  console.log(`depot-ai       ${ourRate.toFixed(1).padStart(7)} MB/s   ${our.compressedSize} bytes   peak RSS ${(our.maxRssBytes / MB).toFixed(0)} MB`);
  console.log(`estargz.Build  ${refRate.toFixed(1).padStart(7)} MB/s   ${ref.size} bytes`);
  console.log(`throughput ratio ${(ourRate / refRate).toFixed(2)}x (target >= 2x); size ${sizeDelta >= 0 ? '+' : ''}${sizeDelta.toFixed(2)}% (target within 1%); peak RSS target < 300 MB`);

  // A >= 2 GB input: the same weights linked eight times (real data, no extra disk).
  const big = path.join(work, 'big-model');
  if (!existsSync(big)) {
    mkdirSync(big, { recursive: true });
    for (let i = 0; i < 8; i++) linkSync(path.join(dir, 'model.safetensors'), path.join(big, `model-${i}-of-8.safetensors`));
  }
  const large = ours(big);
  console.log(
    `depot-ai on ${(large.inputBytes / MB).toFixed(0)} MB: ${(large.inputBytes / large.seconds / MB).toFixed(1)} MB/s, peak RSS ${(large.maxRssBytes / MB).toFixed(0)} MB (target < 300 MB)`,
  );
}
