// A real Dockerfile build with buildah (vfs storage, chroot isolation, plain HTTP to the registry):
// FROM scratch, COPY --from=<image> / /all/ and one file into /one/, then every file compared byte
// for byte with what the image should hold.
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runTool, tempDir } from './registry.ts';

export async function assertBuildahCopies(hostPort: string, from: string, files: Record<string, Buffer>, one: string): Promise<void> {
  const dir = await tempDir('buildah');
  const storage = ['--root', path.join(dir, 'root'), '--runroot', path.join(dir, 'run'), '--storage-driver', 'vfs'];
  const env = { CONTAINERS_REGISTRIES_CONF: path.join(dir, 'registries.conf'), BUILDAH_ISOLATION: 'chroot' };
  await writeFile(env.CONTAINERS_REGISTRIES_CONF, `[[registry]]\nlocation = "${hostPort}"\ninsecure = true\n`);
  const context = path.join(dir, 'context');
  await mkdir(context);
  await writeFile(path.join(context, 'Dockerfile'), ['FROM scratch', `COPY --from=${from} / /all/`, `COPY --from=${from} /${one} /one/`, ''].join('\n'));
  try {
    await runTool('/usr/bin/buildah', [...storage, 'build', '--isolation', 'chroot', '--tls-verify=false', '-t', 'depot-test', context], env);
    const { stdout: container } = await runTool('/usr/bin/buildah', [...storage, 'from', 'depot-test'], env);
    const { stdout: mount } = await runTool('/usr/bin/buildah', [...storage, 'mount', container.trim()], env);
    const root = mount.trim();
    for (const [name, bytes] of Object.entries(files)) {
      const copied = await readFile(path.join(root, 'all', name));
      assert.ok(copied.equals(bytes), `${name} differs`);
    }
    assert.deepEqual(await readdir(path.join(root, 'one')), [path.basename(one)]);
    assert.ok((await readFile(path.join(root, 'one', path.basename(one)))).equals(files[one]));
    await runTool('/usr/bin/buildah', [...storage, 'umount', container.trim()], env);
    await runTool('/usr/bin/buildah', [...storage, 'rm', container.trim()], env);
  } finally {
    await runTool('/usr/bin/buildah', [...storage, 'rmi', '--all', '--force'], env).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
}
