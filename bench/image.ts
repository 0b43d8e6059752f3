// Image builder benchmark, as a user runs it: the whole `depot-ai build --from DIR` command (process
// start included, the compiled CLI) against the reference Go estargz.Build (gzip level 6,
// BuildKit's default, 4 MiB chunks) as a whole command on the same model, in the same run.
// Wall time and peak RSS of each process come from GNU time; targets are printed, not asserted.
import { execFileSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT } from '../test/helpers/cli.ts';
import { benchModel } from './model.ts';

const RUNS = 3;
const MB = 1e6;
const TIME = '/usr/bin/time';
const TARGET_RATIO = 5;
const TARGET_RSS = 300 * MB;
const TARGET_START_SECONDS = 0.3;

interface Run {
  seconds: number;
  maxRssBytes: number;
  stdout: string;
}

/** Run a command under GNU time: its wall seconds and peak RSS. */
function timed(command: string, args: string[]): Run {
  const report = path.join(tmpdir(), `depot-bench-time-${process.pid}`);
  const stdout = execFileSync(TIME, ['-o', report, '-f', '%e %M', command, ...args], { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 24 });
  const [seconds, kb] = execFileSync('tail', ['-1', report], { encoding: 'utf8' }).trim().split(' ').map(Number);
  rmSync(report, { force: true });
  return { seconds, maxRssBytes: kb * 1024, stdout };
}

function ours(dir: string): Run & { size: number } {
  const store = path.join(tmpdir(), `depot-bench-store-${process.pid}`);
  rmSync(store, { recursive: true, force: true });
  try {
    const run = timed(process.execPath, [path.join(ROOT, 'bin/depot-ai.js'), 'build', 'bench/model', '--from', dir, '--store', store]);
    const layer = /^layer\s+.*\((sha256:[0-9a-f]{64})\)/m.exec(run.stdout)![1];
    const { size } = JSON.parse(execFileSync('stat', ['-c', '{"size":%s}', path.join(store, 'bench/model/blobs/sha256', layer.slice(7))], { encoding: 'utf8' }));
    return { ...run, size };
  } finally {
    rmSync(store, { recursive: true, force: true });
  }
}

function reference(tar: string): Run & { size: number } {
  const output = `${tar}.estargz`;
  try {
    const run = timed(path.join(ROOT, 'tools/bin/estargz-build'), ['-level', '6', '-chunk-size', String(4 << 20), tar, output]);
    return { ...run, size: (JSON.parse(run.stdout) as { size: number }).size };
  } finally {
    rmSync(output, { force: true });
  }
}

const best = <T extends { seconds: number }>(runs: T[]): T => runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
const verdict = (ok: boolean) => (ok ? 'ok' : 'MISSED');

export async function benchImage(): Promise<void> {
  // The CLI as installed: compiled at `npm ci` (prepare); rebuilt here so edits are measured.
  execFileSync(process.execPath, [path.join(ROOT, 'scripts/build-cli.js')], { stdio: 'inherit' });
  const work = path.join(tmpdir(), 'depot-bench');
  const dir = benchModel(path.join(work, 'model'));
  const tar = path.join(work, 'model.tar');
  if (!existsSync(tar)) {
    execFileSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '--exclude=.complete', '-cf', tar, '-C', dir, '.']);
  }
  const input = Number(execFileSync('du', ['-sb', '--exclude=.complete', dir], { encoding: 'utf8' }).split('\t')[0]);

  const starts = Array.from({ length: 5 }, () => timed(process.execPath, [path.join(ROOT, 'bin/depot-ai.js'), '--help']).seconds).sort((a, b) => a - b);
  const node = Array.from({ length: 5 }, () => timed(process.execPath, ['-e', '']).seconds).sort((a, b) => a - b);
  console.log(`\n## CLI start-up: depot-ai --help ${starts[2].toFixed(2)} s (median of 5; bare node ${node[2].toFixed(2)} s) target < ${TARGET_START_SECONDS} s ${verdict(starts[2] < TARGET_START_SECONDS)}`);

  // Alternated, so a burst of load on the machine falls on both sides alike.
  const runs = Array.from({ length: RUNS }, () => ({ our: ours(dir), ref: reference(tar) }));
  const our = best(runs.map((r) => r.our));
  const ref = best(runs.map((r) => r.ref));
  const ourRate = input / our.seconds / MB;
  const refRate = input / ref.seconds / MB;
  const ratio = ourRate / refRate;
  const sizeDelta = (our.size - ref.size) / ref.size;
  console.log(`\n## Image build, whole commands (${(input / MB).toFixed(0)} MB model: fp16 normal weights, tokenizer, config; best of ${RUNS})`);
  console.log(`depot-ai build --from  ${ourRate.toFixed(1).padStart(7)} MB/s   ${our.size} bytes   peak RSS ${(our.maxRssBytes / MB).toFixed(0)} MB`);
  console.log(`estargz.Build -level 6 ${refRate.toFixed(1).padStart(7)} MB/s   ${ref.size} bytes   peak RSS ${(ref.maxRssBytes / MB).toFixed(0)} MB`);
  console.log(`throughput ratio ${ratio.toFixed(2)}x (target >= ${TARGET_RATIO}x) ${verdict(ratio >= TARGET_RATIO)}`);
  console.log(`size ${sizeDelta >= 0 ? '+' : ''}${(100 * sizeDelta).toFixed(2)}% (target within 1%) ${verdict(Math.abs(sizeDelta) <= 0.01)}`);
  console.log(`peak RSS ${(our.maxRssBytes / MB).toFixed(0)} MB (target < ${TARGET_RSS / MB} MB) ${verdict(our.maxRssBytes < TARGET_RSS)}`);

  // A >= 2 GB input: the same weights linked eight times (real data, no extra disk).
  const big = path.join(work, 'big-model');
  if (!existsSync(big)) {
    mkdirSync(big, { recursive: true });
    for (let i = 0; i < 8; i++) linkSync(path.join(dir, 'model.safetensors'), path.join(big, `model-${i}-of-8.safetensors`));
  }
  const large = ours(big);
  const bigInput = 8 * Number(execFileSync('stat', ['-c', '%s', path.join(dir, 'model.safetensors')], { encoding: 'utf8' }));
  console.log(
    `depot-ai on ${(bigInput / MB).toFixed(0)} MB: ${(bigInput / large.seconds / MB).toFixed(1)} MB/s, peak RSS ${(large.maxRssBytes / MB).toFixed(0)} MB (target < ${TARGET_RSS / MB} MB) ${verdict(large.maxRssBytes < TARGET_RSS)}`,
  );
}
