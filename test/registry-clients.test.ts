// Real clients against our registry: skopeo (inspect, copy to an OCI layout) and buildah
// (a Dockerfile with COPY --from=127.0.0.1:PORT/<image>) must see exactly what the store holds.
import assert from 'node:assert/strict';
import { sha256Digest } from '../image/oci.ts';
import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { assertBuildahCopies } from './helpers/buildah.ts';
import { makeTestImage, runTool, startTestRegistry, tempDir, tool, type TestImage, type TestRegistry } from './helpers/registry.ts';

tool('/usr/bin/skopeo');
tool('/usr/bin/buildah');
const sha = sha256Digest;

let image: TestImage;
let registry: TestRegistry;

before(async () => {
  image = await makeTestImage({ name: 'Clients/Tiny-Model', tag: 'v1', weights: 9 * 1024 * 1024 });
  registry = await startTestRegistry({ store: image.store });
});
after(async () => {
  await registry?.close();
});

describe('skopeo', () => {
  test('inspect --raw gives the index and the manifest byte for byte', async () => {
    const ref = `docker://${registry.hostPort}/${image.name}:${image.tag}`;
    const { stdout: index } = await runTool('/usr/bin/skopeo', ['inspect', '--raw', '--tls-verify=false', ref]);
    assert.equal(sha(Buffer.from(index)), image.index);
    const { stdout: manifest } = await runTool('/usr/bin/skopeo', [
      'inspect', '--raw', '--tls-verify=false', `docker://${registry.hostPort}/${image.name}@${image.manifest}`,
    ]);
    assert.equal(sha(Buffer.from(manifest)), image.manifest);
    const { stdout: info } = await runTool('/usr/bin/skopeo', ['inspect', '--tls-verify=false', ref]);
    assert.equal(JSON.parse(info).Digest, image.index);
  });

  test('copy --all to an OCI layout: identical digests and blobs', async () => {
    const out = await tempDir('skopeo-oci');
    try {
      await runTool('/usr/bin/skopeo', [
        'copy', '--all', '--src-tls-verify=false',
        `docker://${registry.hostPort}/${image.name}:${image.tag}`, `oci:${out}:${image.tag}`,
      ]);
      const index = JSON.parse(await readFile(path.join(out, 'index.json'), 'utf8'));
      assert.equal(index.manifests[0].digest, image.index);
      const copied = (await readdir(path.join(out, 'blobs/sha256'))).sort();
      const stored = (await readdir(path.join(image.store, ...image.name.split('/'), 'blobs/sha256'))).filter((f) => !f.startsWith('.')).sort();
      assert.deepEqual(copied, stored);
      for (const file of copied) {
        assert.equal(sha(await readFile(path.join(out, 'blobs/sha256', file))), `sha256:${file}`);
      }
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});

describe('buildah', () => {
  test('FROM scratch + COPY --from=<our image> / . and one file: byte-identical files', { timeout: 300_000 }, async () => {
    await assertBuildahCopies(registry.hostPort, `${registry.hostPort}/${image.name}:${image.tag}`, image.files, 'model.safetensors');
  });
});
