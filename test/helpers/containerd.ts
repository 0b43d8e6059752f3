// containerd 1.6 (Debian) with the stargz snapshotter (tools/stargz-snapshotter) as its proxy
// snapshotter plugin, each test's own: root, state, sockets and config in a temp dir. Lazy pulls
// go through `ctr-remote image rpull`; a read-only view of the pulled image is mounted so tests
// read files the way a build step would, through the snapshotter's FUSE mount.
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { mountsUnder, removeDaemonDir, startDaemon, waitForDaemon } from './daemon.ts';
import { ROOT, tempDir, tool } from './registry.ts';

const run = promisify(execFile);
const CONTAINERD = '/usr/bin/containerd';
const CTR_REMOTE = '/usr/bin/ctr-remote';
const SNAPSHOTTER = path.join(ROOT, 'tools/bin/stargz-snapshotter');
const NAMESPACE = 'depot-test';

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
  const snapshotter = startDaemon(SNAPSHOTTER, snapshotterArgs);
  const containerd = startDaemon(CONTAINERD, ['--config', config]);
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
    await containerd.stop();
    await snapshotter.stop(); // unmounts its FUSE layers
    await removeDaemonDir(dir);
  };
  try {
    await waitForDaemon(snapshotter, 'stargz-snapshotter', async () => snapshotter.output().includes('serving on'));
    await waitForDaemon(containerd, 'containerd', async () => /stargz\s+\S+\s+ok/.test(await ctr(['plugins', 'ls'])));
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
      // The mounts are printed by the command that creates the view: a view nothing references
      // may be garbage-collected as soon as that command ends (the bind mount stays valid: it is
      // of the image's committed layer).
      const mounts = JSON.parse(await ctr(['snapshots', '--snapshotter', 'stargz', 'view', '--mounts', key, chainId])) as { Type: string; Source: string; Options?: string[] }[];
      if (mounts.length !== 1) throw new Error(`unexpected mounts for a one-layer view: ${JSON.stringify(mounts)}`);
      const [{ Type, Source, Options = [] }] = mounts;
      await run('mount', ['-t', Type, Source, target, ...(Options.length ? ['-o', Options.join(',')] : [])]);
      return target;
    },
    close,
  };
}
