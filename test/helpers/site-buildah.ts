// A real Dockerfile build with buildah (vfs storage, chroot isolation, plain HTTP to the test
// registry), for the site's copied lines: build, mount, and let the test read the result.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runTool, tempDir, tool } from './registry.ts';

/** Build `dockerfile` (an empty context) against a plain-HTTP registry and mount the image; close() cleans up. */
export async function buildahRoot(hostPort: string, dockerfile: string): Promise<{ path: string; close(): Promise<void> }> {
  const buildah = tool('/usr/bin/buildah');
  const dir = await tempDir('site-buildah');
  const storage = ['--root', path.join(dir, 'root'), '--runroot', path.join(dir, 'run'), '--storage-driver', 'vfs'];
  const env = { CONTAINERS_REGISTRIES_CONF: path.join(dir, 'registries.conf'), BUILDAH_ISOLATION: 'chroot' };
  await writeFile(env.CONTAINERS_REGISTRIES_CONF, `[[registry]]\nlocation = "${hostPort}"\ninsecure = true\n`);
  await mkdir(path.join(dir, 'context'));
  await writeFile(path.join(dir, 'context', 'Dockerfile'), dockerfile);
  const close = async () => {
    await runTool(buildah, [...storage, 'rmi', '--all', '--force'], env).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await runTool(buildah, [...storage, 'build', '--isolation', 'chroot', '--tls-verify=false', '-t', 'depot-site-test', path.join(dir, 'context')], env);
    const { stdout: container } = await runTool(buildah, [...storage, 'from', 'depot-site-test'], env);
    const { stdout: mount } = await runTool(buildah, [...storage, 'mount', container.trim()], env);
    return { path: mount.trim(), close };
  } catch (error) {
    await close();
    throw error;
  }
}
