// Debian's dockerd (20.10) for one test file: no iptables, no bridge, its own data root, exec
// root, socket and pidfile in a temp dir (it starts its own containerd there), driven by Debian's
// /usr/bin/docker CLI with its own DOCKER_CONFIG. 127.0.0.0/8 registries are insecure-allowed by
// default, so `serve` on 127.0.0.1:PORT is pulled over plain HTTP.
import { execFile, spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { tempDir, tool } from './registry.ts';

const run = promisify(execFile);
const DOCKERD = '/usr/sbin/dockerd';
const DOCKER = '/usr/bin/docker'; // not /usr/local/bin/docker (a v28 client)
const START_MS = 120_000;

export interface Dockerd {
  dir: string;
  /** `docker ARGS` against this daemon; its stdout. `env` adds e.g. DOCKER_BUILDKIT. */
  docker(args: string[], env?: NodeJS.ProcessEnv): Promise<string>;
  close(): Promise<void>;
}

export async function startDockerd(): Promise<Dockerd> {
  tool(DOCKERD);
  tool(DOCKER);
  const dir = await tempDir('dockerd');
  const socket = `unix://${path.join(dir, 'docker.sock')}`;
  const child = spawn(
    DOCKERD,
    ['--iptables=false', '--ip-masq=false', '--bridge=none', '--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'exec'), '-H', socket, '--pidfile', path.join(dir, 'docker.pid')],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const keep = (d: Buffer) => (output = (output + d.toString()).slice(-20_000));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const docker = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
    try {
      const env_ = { ...process.env, DOCKER_HOST: socket, DOCKER_CONFIG: path.join(dir, 'config'), ...env };
      return (await run(DOCKER, args, { env: env_, maxBuffer: 64 * 1024 * 1024 })).stdout;
    } catch (error) {
      const e = error as { stderr?: string; stdout?: string };
      throw new Error(`docker ${args.join(' ')}: ${e.stderr ?? error}\n${e.stdout ?? ''}`);
    }
  };
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    }
    const info = await readFile('/proc/self/mountinfo', 'utf8');
    const points = info.split('\n').map((l) => l.split(' ')[4]).filter((p) => p?.startsWith(`${dir}/`)).reverse();
    for (const point of points) await run('umount', ['-l', point]).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + START_MS;
  for (;;) {
    if (child.exitCode !== null) {
      await close();
      throw new Error(`dockerd exited: ${output}`);
    }
    if (await docker(['version', '--format', '{{.Server.Version}}']).then(() => true, () => false)) break;
    if (Date.now() > deadline) {
      await close();
      throw new Error(`dockerd did not start: ${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { dir, docker, close };
}
