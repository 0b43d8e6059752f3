// depot-ai cp: one file out of an image served by our registry, with range requests only.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { buildImage } from '../builder/build.ts';
import { DEFAULT_CHUNK_SIZE } from '../image/estargz.ts';
import { FOOTER_SIZE } from '../image/footer.ts';
import { resolveLayer } from '../builder/image-info.ts';
import { ImageLayout } from '../image/layout.ts';
import { jsonBlob, MEDIA_TYPE } from '../image/oci.ts';
import { FolderSource } from '../sources/folder.ts';
import { fileReadAt } from '../image/read-at.ts';
import { readToc } from '../image/toc.ts';
import { tarHeader, padding, tarTrailer } from '../image/tar.ts';
import { startRegistry, type RunningRegistry } from '../registry/server.ts';
import { depotAi } from './helpers/cli.ts';
import { eventually } from './helpers/registry.ts';
import { modelDir, pseudoRandomBytes, tempDir } from './helpers/models.ts';

const files = {
  'config.json': '{"model_type":"bert","hidden_size":768}\n',
  'model.safetensors': pseudoRandomBytes(5 * DEFAULT_CHUNK_SIZE + 1234, 11),
  'tokenizer.json': '{"version":"1.0"}\n',
};

describe('depot-ai cp', () => {
  const store = tempDir('depot-store-');
  const source = modelDir(files);
  let registry: RunningRegistry;
  let blobBytes = 0;
  let host = '';

  before(async () => {
    await buildImage({ name: 'lazy/model', source: new FolderSource(source), store, tag: 'latest' });
    // The registry's own request log tells how many blob bytes were really sent.
    registry = await startRegistry({
      store,
      port: 0,
      log: (line) => {
        const match = / \/v2\/[^ ]+\/blobs\/[^ ]+ \d+ (\d+)B /.exec(line);
        if (match) blobBytes += Number(match[1]);
      },
    });
    host = `127.0.0.1:${registry.port}`;
  });
  after(() => registry.close());

  async function layerGeometry() {
    const layout = new ImageLayout(store, 'lazy/model');
    const { layer } = (await resolveLayer(layout, 'latest'))!;
    const reader = await fileReadAt(layout.blobPath(layer.digest));
    const { toc, tocOffset } = (await readToc(reader.readAt, reader.size))!;
    await reader.close();
    return { layer, toc, tocOffset };
  }

  test('a small file from a large image fetches the footer, the TOC and its own chunk only', async () => {
    const { layer, toc, tocOffset } = await layerGeometry();
    const index = toc.entries.findIndex((e) => e.name === 'config.json');
    const chunkEnd = toc.entries.slice(index + 1).find((e) => e.offset !== undefined)!.offset!;
    const needed = FOOTER_SIZE + (layer.size - FOOTER_SIZE - tocOffset) + (chunkEnd - toc.entries[index].offset!);

    blobBytes = 0;
    const dest = path.join(tempDir(), 'config.json');
    const run = await depotAi(['cp', '--insecure', `${host}/lazy/model:/config.json`, dest]);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(readFileSync(dest, 'utf8'), files['config.json']);
    // A request is logged once its response has closed on the server, which may trail the client.
    await eventually(() => blobBytes >= needed, `the log to account for the minimum ${needed} bytes`);
    assert.ok(blobBytes <= needed + 4096, `fetched ${blobBytes} bytes, more than ${needed} + 4 KiB slack`);
    assert.ok(blobBytes < layer.size / 100, 'a small fraction of the layer');
    assert.match(run.stderr, /copied \/config\.json .* range requests/);
  });

  test('a multi-chunk file arrives byte-identical, into a folder', async () => {
    const dir = tempDir();
    const run = await depotAi(['cp', '--insecure', `${host}/lazy/model:latest:/model.safetensors`, dir]);
    assert.equal(run.status, 0, run.stderr);
    assert.ok(readFileSync(path.join(dir, 'model.safetensors')).equals(files['model.safetensors']));
    assert.match(run.stderr, /6 chunks/);
  });

  test('an image that is not eStargz is streamed instead', async () => {
    const content = Buffer.from('plain layer content\n');
    const tar = Buffer.concat([
      tarHeader({ name: 'dir/', type: 'dir', size: 0, mode: 0o755, mtime: 0 }),
      tarHeader({ name: 'dir/plain.txt', type: 'file', size: content.length, mode: 0o644, mtime: 0 }),
      content,
      Buffer.alloc(padding(content.length)),
      tarTrailer(),
    ]);
    const layout = new ImageLayout(store, 'plain/image');
    const layer = gzipSync(tar);
    const config = jsonBlob(MEDIA_TYPE.config, { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } });
    const manifest = jsonBlob(MEDIA_TYPE.manifest, {
      schemaVersion: 2,
      mediaType: MEDIA_TYPE.manifest,
      config: config.descriptor,
      layers: [{ mediaType: MEDIA_TYPE.layerGzip, digest: await layout.writeBlob(layer), size: layer.length }],
    });
    await layout.writeBlob(config.bytes);
    await layout.writeBlob(manifest.bytes);
    await layout.setTag('latest', manifest.descriptor);

    const dest = path.join(tempDir(), 'plain.txt');
    const run = await depotAi(['cp', '--insecure', `${host}/plain/image:/dir/plain.txt`, dest]);
    assert.equal(run.status, 0, run.stderr);
    assert.ok(readFileSync(dest).equals(content));
    assert.match(run.stderr, /streamed, not eStargz/);
  });

  const failures: Array<[string, () => string[], RegExp]> = [
    ['a file the image does not have', () => ['cp', '--insecure', `${host}/lazy/model:/missing.bin`, tempDir()], /\/missing\.bin is not in the image/],
    ['an unknown image', () => ['cp', '--insecure', `${host}/no/such:/config.json`, tempDir()], /404/],
    ['an unreachable registry', () => ['cp', '--insecure', '127.0.0.1:9/lazy/model:/config.json', tempDir()], /cannot reach 127\.0\.0\.1:9/],
    ['no path', () => ['cp', `${host}/lazy/model`, tempDir()], /needs the file after ":\/"/],
  ];
  for (const [what, args, message] of failures) {
    test(`${what}: one clear line and a non-zero exit`, async () => {
      const run = await depotAi(args());
      assert.notEqual(run.status, 0);
      assert.match(run.stderr, message);
      assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
    });
  }
});
