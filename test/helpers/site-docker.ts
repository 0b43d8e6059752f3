// A private Docker engine (Debian docker.io's dockerd, classic builder or BuildKit) for the site's Dockerfile
// lines: own data root, exec root and socket under a temp dir, no iptables or bridge, so it
// touches nothing of the host's or other tests' engines. Stopped by its own PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runTool, tempDir, tool } from './registry.ts';

export interface Dockerd {
  /** Build `dockerfile` (an empty context) with the classic builder, or BuildKit when `buildkit`, and copy the resulting image's file system to a new folder. */
  buildRoot(dockerfile: string, buildkit?: boolean): Promise<string>;
  close(): Promise<void>;
}

export async function startDockerd(): Promise<Dockerd> {
  const dockerd = tool('/usr/sbin/dockerd');
  const docker = tool('/usr/bin/docker');
  const dir = await tempDir('site-dockerd');
  const socket = path.join(dir, 'sock');
  const child: ChildProcess = spawn(dockerd, ['--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'exec'), '--pidfile', path.join(dir, 'pid'), '-H', `unix://${socket}`, '--iptables=false', '--ip6tables=false', '--bridge=none'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d) => (log = (log + d).slice(-4000)));
  const run = (args: string[], buildkit = false) => runTool(docker, ['-H', `unix://${socket}`, ...args], { DOCKER_BUILDKIT: buildkit ? '1' : '0' });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`dockerd exited (${child.exitCode}):\n${log}`);
    if (existsSync(socket) && (await run(['version']).then(() => true, () => false))) break;
    if (Date.now() > deadline) throw new Error(`dockerd did not answer within 60 s:\n${log}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  let builds = 0;
  return {
    async buildRoot(dockerfile, buildkit = false) {
      const work = path.join(dir, `build-${builds++}`);
      await mkdir(path.join(work, 'context'), { recursive: true });
      await writeFile(path.join(work, 'context', 'Dockerfile'), dockerfile);
      const tag = `site-test-${builds}`;
      await run(['build', '-q', '-t', tag, path.join(work, 'context')], buildkit);
      const { stdout } = await run(['create', tag, 'none']);
      await run(['cp', `${stdout.trim()}:/`, path.join(work, 'root')]);
      return path.join(work, 'root');
    },
    async close() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
