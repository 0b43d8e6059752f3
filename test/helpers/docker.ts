// Debian's dockerd (20.10) for one test file: no iptables, no bridge, its own data root, exec
// root, socket and pidfile in a temp dir (it starts its own containerd there), driven by Debian's
// /usr/bin/docker CLI with its own DOCKER_CONFIG. 127.0.0.0/8 registries are insecure-allowed by
// default, so `serve` on 127.0.0.1:PORT is pulled over plain HTTP.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { removeDaemonDir, startDaemon, waitForDaemon } from './daemon.ts';
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
  const daemon = startDaemon(DOCKERD, [
    '--iptables=false',
    '--ip-masq=false',
    '--bridge=none',
    '--data-root',
    path.join(dir, 'data'),
    '--exec-root',
    path.join(dir, 'exec'),
    '-H',
    socket,
    '--pidfile',
    path.join(dir, 'docker.pid'),
  ]);
  const docker = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
    try {
      const merged = { ...process.env, DOCKER_HOST: socket, DOCKER_CONFIG: path.join(dir, 'config'), ...env };
      return (await run(DOCKER, args, { env: merged, maxBuffer: 64 * 1024 * 1024 })).stdout;
    } catch (error) {
      const e = error as { stderr?: string; stdout?: string };
      throw new Error(`docker ${args.join(' ')}: ${e.stderr ?? error}\n${e.stdout ?? ''}`);
    }
  };
  const close = async () => {
    await daemon.stop();
    await removeDaemonDir(dir);
  };
  try {
    await waitForDaemon(daemon, 'dockerd', () => docker(['version', '--format', '{{.Server.Version}}']).then(() => true), START_MS);
  } catch (error) {
    await close();
    throw error;
  }
  return { dir, docker, close };
}
