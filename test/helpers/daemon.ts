// Long-running system daemons the tests start (containerd, the stargz snapshotter, dockerd): their
// output kept (bounded) for error messages, a stop that escalates to SIGKILL, and the clean-up of
// the mounts they leave under their temp dir.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);
const KEEP = 20_000;

export interface Daemon {
  child: ChildProcess;
  /** The last 20,000 characters it printed (stdout and stderr). */
  output(): string;
  stop(): Promise<void>;
}

export function startDaemon(file: string, args: string[]): Daemon {
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (d: Buffer) => (output = (output + d.toString()).slice(-KEEP));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return {
    child,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Polls `probe` (every 100 ms) until it resolves truthy; throws with the daemon's output when it
 * exits first or `ms` pass.
 */
export async function waitForDaemon(daemon: Daemon, what: string, probe: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (daemon.child.exitCode !== null || daemon.child.signalCode !== null) throw new Error(`${what} exited: ${daemon.output()}`);
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what} did not start: ${daemon.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Every mount point at or under `dir`, deepest first. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point) => point && (point === dir || point.startsWith(`${dir}/`)))
    .reverse();
}

/** Lazily unmounts whatever is left under `dir`, then removes it. */
export async function removeDaemonDir(dir: string): Promise<void> {
  for (const point of await mountsUnder(dir)) await run('umount', ['-l', point]).catch(() => {});
  await rm(dir, { recursive: true, force: true });
}
