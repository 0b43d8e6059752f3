// containerd 1.6 (Debian) with the stargz snapshotter (tools/stargz-snapshotter) as its proxy
// snapshotter plugin, each test's own: root, state, sockets and config in a temp dir. Lazy pulls
// go through `ctr-remote image rpull`; a read-only view of the pulled image is mounted so tests
// read files the way a build step would, through the snapshotter's FUSE mount.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT, tempDir, tool } from './registry.ts';

const run = promisify(execFile);
const CONTAINERD = '/usr/bin/containerd';
const CTR_REMOTE = '/usr/bin/ctr-remote';
const SNAPSHOTTER = path.join(ROOT, 'tools/bin/stargz-snapshotter');
const NAMESPACE = 'depot-test';
const WAIT_MS = 60_000;

export interface SnapshotterOptions {
  /** Fetch the files an image lists before its prefetch landmark at mount time (default off, for measuring). */
  prefetch?: boolean;
  /** Fetch the rest of each layer in the background (default off, for measuring). */
  backgroundFetch?: boolean;
}

export interface Containerd {
  dir: string;
  /** `ctr-remote` against this containerd, in the test namespace; its stdout. */
  ctr(args: string[]): Promise<string>;
  /** Lazy pull `ref` (plain HTTP) with the stargz snapshotter. */
  rpull(ref: string): Promise<void>;
  /**
   * Mount a read-only view of a pulled image's top snapshot, named by its chain ID (for a
   * one-layer image: the layer's diff ID); the folder where its files are.
   */
  mountView(chainId: string): Promise<string>;
  close(): Promise<void>;
}

/** Waits until `probe` resolves truthy or the process exits (then throws with its output). */
async function waitFor(probe: () => Promise<boolean>, child: ChildProcess, output: () => string, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${what} exited: ${output()}`);
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what} did not start: ${output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function startLogged(file: string, args: string[]): { child: ChildProcess; output: () => string } {
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (d: Buffer) => (output = (output + d.toString()).slice(-20_000)); // bounded
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return { child, output: () => output };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** Every mount point under `dir`, deepest first (so they can be unmounted in order). */
async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point) => point && (point === dir || point.startsWith(`${dir}/`)))
    .reverse();
}

export async function startContainerd(options: SnapshotterOptions = {}): Promise<Containerd> {
  tool(CONTAINERD);
  tool(CTR_REMOTE);
  tool(SNAPSHOTTER);
  const dir = await tempDir('ctrd');
  const address = path.join(dir, 'containerd.sock');
  const snapshotterAddress = path.join(dir, 'stargz.sock');
  const config = path.join(dir, 'config.toml');
  await mkdir(path.join(dir, 'views'));
  await writeFile(
    config,
    [
      'version = 2',
      `root = "${dir}/root"`,
      `state = "${dir}/state"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${address}"`,
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = "${dir}/opt"`,
      '[proxy_plugins.stargz]',
      '  type = "snapshot"',
      `  address = "${snapshotterAddress}"`,
      '',
    ].join('\n'),
  );
  const snapshotterArgs = ['-address', snapshotterAddress, '-root', path.join(dir, 'snapshotter')];
  if (!options.prefetch) snapshotterArgs.push('-no-prefetch');
  if (!options.backgroundFetch) snapshotterArgs.push('-no-background-fetch');
  const snapshotter = startLogged(SNAPSHOTTER, snapshotterArgs);
  const containerd = startLogged(CONTAINERD, ['--config', config]);
  const ctr = async (args: string[]) => {
    try {
      return (await run(CTR_REMOTE, ['--address', address, '--namespace', NAMESPACE, ...args], { maxBuffer: 16 * 1024 * 1024 })).stdout;
    } catch (error) {
      const tail = (text: string) => text.slice(-3000);
      throw new Error(`ctr-remote ${args.join(' ')}: ${(error as { stderr?: string }).stderr ?? error}\nsnapshotter: ${tail(snapshotter.output())}\ncontainerd: ${tail(containerd.output())}`);
    }
  };
  const close = async () => {
    for (const point of await mountsUnder(`${dir}/views`)) await run('umount', [point]).catch(() => run('umount', ['-l', point]));
    await stop(containerd.child);
    await stop(snapshotter.child); // unmounts its FUSE layers
    for (const point of await mountsUnder(dir)) await run('umount', ['-l', point]).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(async () => snapshotter.output().includes('serving on'), snapshotter.child, snapshotter.output, 'stargz-snapshotter');
    await waitFor(async () => (await ctr(['plugins', 'ls'])).match(/stargz\s+\S+\s+ok/) !== null, containerd.child, containerd.output, 'containerd');
  } catch (error) {
    await close();
    throw error;
  }
  let views = 0;
  return {
    dir,
    ctr,
    async rpull(ref) {
      await ctr(['image', 'rpull', '--plain-http', '--snapshotter', 'stargz', ref]);
    },
    async mountView(chainId) {
      const key = `view-${++views}`;
      const target = path.join(dir, 'views', key);
      await mkdir(target);
      await ctr(['snapshots', '--snapshotter', 'stargz', 'view', key, chainId]);
      const mount = (await ctr(['snapshots', '--snapshotter', 'stargz', 'mounts', target, key])).trim();
      const m = /^mount -t (\S+) (\S+) (\S+)(?: -o (\S+))?$/.exec(mount);
      if (!m) throw new Error(`unexpected mount command: ${mount}`);
      await run('mount', ['-t', m[1], m[2], m[3], ...(m[4] ? ['-o', m[4]] : [])]);
      return target;
    },
    close,
  };
}
