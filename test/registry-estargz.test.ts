// The reference estargz reader (tools/estargz-check, Go) reads one small file from an image in
// our registry through HTTP Range requests: the bytes match and only a small part of the layer moves.
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { eventually, makeTestImage, ROOT, runTool, startTestRegistry, tempDir, tool, type TestImage, type TestRegistry } from './helpers/registry.ts';

const checker = tool(path.join(ROOT, 'tools/bin/estargz-check'));

let image: TestImage;
let registry: TestRegistry;

before(async () => {
  image = await makeTestImage({ name: 'Lazy/Model', tag: 'v1', weights: 24 * 1024 * 1024 });
  registry = await startTestRegistry({ store: image.store });
});
after(async () => {
  await registry?.close();
});

test('one small file through Range requests: right bytes, a small fraction of the layer', async () => {
  const manifest = JSON.parse(await readFile(path.join(image.store, 'lazy/model/blobs/sha256', image.manifest.slice(7)), 'utf8'));
  const tocDigest = manifest.layers[0].annotations['containerd.io/snapshot/stargz/toc.digest'];
  assert.match(tocDigest, /^sha256:/);
  const dir = await tempDir('lazy');
  try {
    for (const file of ['config.json', 'nested/dir/notes.txt']) {
      const out = path.join(dir, path.basename(file));
      const before = registry.lines.length;
      const { stdout } = await runTool(checker, [
        'read', '-url', `${registry.url}/v2/${image.name}/blobs/${image.layer}`, '-toc-digest', tocDigest, '-file', file, '-out', out,
      ]);
      const report = JSON.parse(stdout) as { blobSize: number; fetched: number; requests: number };
      assert.ok((await readFile(out)).equals(image.files[file]), `${file} differs`);
      assert.equal(report.blobSize, image.layerSize);
      assert.ok(report.fetched < report.blobSize / 50, `fetched ${report.fetched} of ${report.blobSize} bytes`);
      await eventually(() => registry.lines.slice(before).some((l) => / 206 /.test(l)), 'a range request in the log');
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
