// `npm run bench` (streaming push): the whole `depot-ai build NAME --push` command, as the publish
// workflow runs it, streaming a model generated on demand by the Hub stand-in (every connection
// throttled to 10 MB/s, as the Hub's storage serves one connection) into the CNCF registry on this
// machine. Printed beside the targets: end-to-end MB/s, peak disk (cache + spool, sampled) and the
// peak RSS of the depot-ai process (GNU time). DEPOT_BENCH_STREAM_BYTES sets the model's size.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bigModel } from '../test/helpers/big-model.ts';
import { CLI, ROOT } from '../test/helpers/cli.ts';
import { startHubServer } from '../test/helpers/hub-server.ts';
import { startCncfRegistry } from '../test/helpers/registry.ts';

const MB = 1e6;
const GiB = 1 << 30;
const PER_CONNECTION = 10 * MB;
const TARGET_RATE = 50 * MB;
const TARGET_DISK = GiB;
const TARGET_RSS = 512 * MB;

const verdict = (ok: boolean) => (ok ? 'OK' : 'MISSED');

/** Bytes of the files under `dir` now. */
function usage(dir: string): number {
  let bytes = 0;
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const info = statSync(path.join(dir, name), { throwIfNoEntry: false });
    if (info?.isFile()) bytes += info.blocks * 512;
  }
  return bytes;
}

export async function benchStreamPush(): Promise<void> {
  const size = Number(process.env.DEPOT_BENCH_STREAM_BYTES) || 2.1e9;
  const name = 'Bench-Org/Streamed';
  const work = mkdtempSync(path.join(tmpdir(), 'depot-bench-stream-'));
  const files = bigModel(size);
  const hub = await startHubServer({ repos: [{ name, commits: [{ files }] }] });
  hub.bytesPerSecond = PER_CONNECTION;
  const cncf = await startCncfRegistry();
  try {
    const catalog = path.join(work, 'models.yaml');
    writeFileSync(catalog, `models:\n  - name: ${name}\n    sha: ${hub.head(name)}\n`);
    const local = path.join(work, 'local'); // cache, store and TMPDIR of the command: all its disk
    const report = path.join(work, 'time');
    mkdirSync(local, { recursive: true });
    const child = spawn('/usr/bin/time', ['-o', report, '-f', '%e %M %U %S', process.execPath, CLI, 'build', name, '--catalog', catalog, '--push', cncf.hostPort, '--insecure'], {
      cwd: ROOT,
      env: { ...process.env, HF_ENDPOINT: hub.url, HF_TOKEN: '', DEPOT_CACHE: path.join(local, 'cache'), DEPOT_STORE: path.join(local, 'store'), TMPDIR: local, SOURCE_DATE_EPOCH: '0' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    let peakDisk = 0;
    const sampler = setInterval(() => (peakDisk = Math.max(peakDisk, usage(local))), 100);
    const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearInterval(sampler);
    if (status !== 0) throw new Error(`depot-ai build --push failed: ${stderr.trim().split('\n').at(-1)}`);
    const [seconds, kb, user, system] = readFileSync(report, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number);
    const rate = size / seconds;
    console.log(`\n## Streaming push (${(size / 1e9).toFixed(2)} GB model from the Hub stand-in, ${PER_CONNECTION / MB} MB/s per connection, into the CNCF registry; whole command)`);
    console.log(`end to end  ${(rate / MB).toFixed(1).padStart(7)} MB/s  (${seconds.toFixed(1)} s, ${(seconds / (size / 1e9)).toFixed(1)} s per GB)  target >= ${TARGET_RATE / MB} MB/s ${verdict(rate >= TARGET_RATE)}`);
    console.log(`peak disk   ${(peakDisk / MB).toFixed(0).padStart(7)} MB                  target <= 1 GiB ${verdict(peakDisk <= TARGET_DISK)}`);
    console.log(`peak RSS    ${((kb * 1024) / MB).toFixed(0).padStart(7)} MB                  target < ${TARGET_RSS / MB} MB ${verdict(kb * 1024 < TARGET_RSS)}`);
    console.log(`CPU         ${(user + system).toFixed(1).padStart(7)} s of depot-ai (${((user + system) / seconds).toFixed(2)} cores busy on average)`);
  } finally {
    await hub.close();
    await cncf.stop();
    rmSync(work, { recursive: true, force: true });
    rmSync(cncf.dir, { recursive: true, force: true });
  }
}
