// The image issue: every layer built here is read back by the reference estargz reader.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync, truncateSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { buildImage } from '../builder/build.ts';
import { DEFAULT_CHUNK_SIZE } from '../image/estargz.ts';
import { readImageInfo, resolveLayer } from '../builder/image-info.ts';
import { ImageLayout } from '../image/layout.ts';
import { ANNOTATION, sha256Digest, type ImageIndex, type ImageManifest } from '../image/oci.ts';
import { FolderSource } from '../sources/folder.ts';
import { fileReadAt } from '../image/read-at.ts';
import { readToc } from '../image/toc.ts';
import { depotAi } from './helpers/cli.ts';
import { verifyStoredImage } from './helpers/estargz.ts';
import { modelDir, pseudoRandomBytes, tempDir } from './helpers/models.ts';

const SHA = '0123456789abcdef0123456789abcdef01234567';

async function build(name: string, dir: string, store = tempDir('depot-store-'), tag = 'latest', sha = SHA) {
  const result = await buildImage({ name, source: new FolderSource(dir), store, tag, sha });
  return { store, result };
}

async function tocOf(store: string, image: string, tag = 'latest') {
  const layout = new ImageLayout(store, image);
  const { layer } = (await resolveLayer(layout, tag))!;
  const reader = await fileReadAt(layout.blobPath(layer.digest));
  try {
    return (await readToc(reader.readAt, reader.size))!;
  } finally {
    await reader.close();
  }
}

describe('eStargz layer, read back by the reference reader', () => {
  test('edge cases: empty file, chunk-size boundaries, long and non-ASCII names, deep nesting', async () => {
    const deep = Array.from({ length: 40 }, (_, i) => `level${i}`).join('/');
    const longName = `${'very-long-directory-name-'.repeat(6)}/${'a'.repeat(150)}.bin`;
    const files = {
      'config.json': '{"model_type":"bert"}',
      'empty.txt': '',
      'exact.bin': pseudoRandomBytes(DEFAULT_CHUNK_SIZE, 2),
      'over.bin': pseudoRandomBytes(DEFAULT_CHUNK_SIZE + 1, 3),
      [longName]: 'long',
      'ünïcödé/日本語モデル.json': '{"ja":true}',
      [`${deep}/leaf.txt`]: 'deep',
    };
    const dir = modelDir(files);
    const { store, result } = await build('edge/cases', dir);
    const report = await verifyStoredImage(store, 'edge/cases', 'latest');
    assert.equal(report.files, Object.keys(files).length + 1, 'every file plus the landmark');
    assert.equal(report.tocDigest, (await tocOf(store, 'edge/cases')).tocDigest);
    assert.equal(result.files, Object.keys(files).length);

    const { toc } = await tocOf(store, 'edge/cases');
    const chunksOf = (name: string) => toc.entries.filter((e) => e.name === name && (e.type === 'reg' || e.type === 'chunk'));
    assert.equal(chunksOf('exact.bin').length, 1, 'a file of exactly the chunk size is one chunk');
    assert.equal(chunksOf('exact.bin')[0].chunkSize, DEFAULT_CHUNK_SIZE);
    assert.deepEqual(chunksOf('over.bin').map((e) => [e.chunkOffset ?? 0, e.chunkSize ?? 0]), [[0, DEFAULT_CHUNK_SIZE], [DEFAULT_CHUNK_SIZE, 0]]);
    assert.ok(toc.entries.some((e) => e.name === longName && e.type === 'reg'));
    assert.ok(toc.entries.every((e) => e.type !== 'reg' || e.digest), 'every file has a digest');

    // A plain tar client sees the same names, owned by root, at the epoch.
    const layout = new ImageLayout(store, 'edge/cases');
    const { layer } = (await resolveLayer(layout, 'latest'))!;
    const listing = execFileSync('tar', ['--numeric-owner', '-tvzf', layout.blobPath(layer.digest)], { encoding: 'utf8' });
    assert.match(listing, /-rw-r--r-- 0\/0 +0 1970-01-01 00:00 empty\.txt/);
    assert.match(listing, /drwxr-xr-x 0\/0 +0 1970-01-01 00:00 ünïcödé\//);
    assert.ok(listing.includes(longName), 'the long name survives a plain tar read');
  });

  test('the reference reader rejects a layer with one flipped byte', async () => {
    const { store } = await build('corrupt/model', modelDir({ 'model.bin': pseudoRandomBytes(3 * DEFAULT_CHUNK_SIZE, 7) }));
    await verifyStoredImage(store, 'corrupt/model', 'latest');
    const layout = new ImageLayout(store, 'corrupt/model');
    const { layer } = (await resolveLayer(layout, 'latest'))!;
    const blob = readFileSync(layout.blobPath(layer.digest));
    blob[Math.floor(blob.length / 2)] ^= 0xff;
    writeFileSync(layout.blobPath(layer.digest), blob);
    await assert.rejects(verifyStoredImage(store, 'corrupt/model', 'latest'));
  });

  test('thousands of small files', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 3000; i++) files[`shard-${i % 30}/file-${String(i).padStart(5, '0')}.txt`] = `content ${i}\n`;
    const { store } = await build('many/files', modelDir(files));
    const report = await verifyStoredImage(store, 'many/files', 'latest');
    assert.equal(report.files, 3001);
    assert.equal(report.dirs, 30);
  });

  test('a sparse file larger than 8 GiB (PAX size header)', async () => {
    const dir = tempDir('depot-sparse-');
    const size = 8 * 1024 ** 3 + 12345;
    writeFileSync(path.join(dir, 'huge.bin'), '');
    truncateSync(path.join(dir, 'huge.bin'), size);
    writeFileSync(path.join(dir, 'config.json'), '{}');
    const { store, result } = await build('sparse/huge', dir);
    const report = await verifyStoredImage(store, 'sparse/huge', 'latest');
    assert.equal(report.bytes, size + 2 + 1);
    assert.equal(report.chunks, Math.ceil(size / DEFAULT_CHUNK_SIZE) + 2);
    assert.ok(result.compressedSize < size / 100, 'zeros compress');
  });

  test('.git and .gitattributes never enter the image; symbolic links are followed', async () => {
    const dir = modelDir({ 'model.bin': 'weights', '.gitattributes': '*.bin filter=lfs', '.git/HEAD': 'ref: main', 'sub/.gitattributes': 'x' });
    symlinkSync(path.join(dir, 'model.bin'), path.join(dir, 'linked.bin'));
    const { store } = await build('plumbing/excluded', dir);
    const info = await readImageInfo(store, 'plumbing/excluded', 'latest');
    assert.deepEqual(info!.files.map((f) => f.path), ['linked.bin', 'model.bin']);
    await verifyStoredImage(store, 'plumbing/excluded', 'latest');
  });
});

describe('the image', () => {
  test('index, two platform manifests sharing one layer, labels and annotations everywhere', async () => {
    const { store, result } = await build('Owner/Mixed-Case.Model', modelDir({ 'a.txt': 'a' }));
    assert.equal(result.image, 'owner/mixed-case.model');
    const layout = new ImageLayout(store, 'owner/mixed-case.model');
    const tagged = (await layout.resolveTag('latest'))!;
    const expectLabels = (labels: Record<string, string> | undefined, what: string) => {
      assert.equal(labels?.[ANNOTATION.source], 'https://huggingface.co/Owner/Mixed-Case.Model', what);
      assert.equal(labels?.[ANNOTATION.revision], SHA, what);
    };
    expectLabels(tagged.annotations, 'index descriptor');
    const index = await layout.readJson<ImageIndex>(tagged.digest);
    expectLabels(index.annotations, 'index');
    assert.deepEqual(index.manifests.map((m) => m.platform), [{ architecture: 'amd64', os: 'linux' }, { architecture: 'arm64', os: 'linux' }]);
    const layers = new Set<string>();
    for (const descriptor of index.manifests) {
      expectLabels(descriptor.annotations, 'manifest descriptor');
      const manifest = await layout.readJson<ImageManifest>(descriptor.digest);
      expectLabels(manifest.annotations, 'manifest');
      const config = await layout.readJson<{ created: string; architecture: string; config: { Labels: Record<string, string> }; rootfs: { diff_ids: string[] } }>(manifest.config.digest);
      expectLabels(config.config.Labels, 'config');
      assert.equal(config.created, '1970-01-01T00:00:00Z');
      assert.equal(config.architecture, descriptor.platform!.architecture);
      const layer = manifest.layers[0];
      assert.equal(manifest.layers.length, 1);
      assert.match(layer.annotations![ANNOTATION.tocDigest], /^sha256:[0-9a-f]{64}$/);
      assert.equal(Number(layer.annotations![ANNOTATION.uncompressedSize]), result.uncompressedSize);
      assert.equal(await layout.blobSize(layer.digest), layer.size);
      layers.add(layer.digest);
    }
    assert.equal(layers.size, 1, 'both platforms share the one layer');
    await verifyStoredImage(store, 'owner/mixed-case.model', 'latest');
  });

  test('same files in, same index digest out: order, mtimes, permissions and umask do not matter', async () => {
    const files: Array<[string, Buffer]> = [
      ['config.json', Buffer.from('{"hidden_size":8}')],
      ['tokenizer/vocab.txt', Buffer.from('[PAD]\n[UNK]\nhello\n')],
      ['weights/model.safetensors', pseudoRandomBytes(DEFAULT_CHUNK_SIZE + 4096, 9)],
    ];
    const first = modelDir(Object.fromEntries(files));
    const second = tempDir('depot-model-');
    const oldUmask = process.umask(0o077);
    try {
      for (const [name, content] of [...files].reverse()) {
        mkdirSync(path.join(second, path.dirname(name)), { recursive: true });
        writeFileSync(path.join(second, name), content);
        chmodSync(path.join(second, name), 0o755);
        utimesSync(path.join(second, name), new Date('2001-02-03'), new Date('2001-02-03'));
      }
    } finally {
      process.umask(oldUmask);
    }
    const a = await build('repro/model', first);
    const b = await build('repro/model', second);
    assert.equal(a.result.indexDigest, b.result.indexDigest);
    assert.equal(a.result.layerDigest, b.result.layerDigest);
    await verifyStoredImage(a.store, 'repro/model', 'latest');
    const other = await build('repro/model', modelDir({ ...Object.fromEntries(files), 'config.json': '{"hidden_size":9}' }));
    assert.notEqual(other.result.indexDigest, a.result.indexDigest, 'different content, different digest');
  });

  test('earlier tags of the same image are kept; no temp files are left behind', async () => {
    const store = tempDir('depot-store-');
    // Two revisions: each also gets its revision tag (the same sha twice would be refused).
    const other = SHA.replace(/^0/, 'f');
    await build('tags/model', modelDir({ 'a.txt': 'one' }), store, 'v1');
    await build('tags/model', modelDir({ 'a.txt': 'two' }), store, 'v2', other);
    const layout = new ImageLayout(store, 'tags/model');
    assert.deepEqual((await layout.tags()).sort(), [SHA, 'v1', 'v2', other].sort());
    assert.equal(readFileSync(path.join(layout.dir, 'oci-layout'), 'utf8'), '{"imageLayoutVersion":"1.0.0"}');
    assert.deepEqual(readdirSync(path.join(store, '.tmp')), []);
    assert.equal((await readImageInfo(store, 'tags/model', 'v1'))!.files[0].size, 3);
    for (const tag of ['v1', 'v2']) await verifyStoredImage(store, 'tags/model', tag);
  });

  test('skopeo copies the store layout and reports the same digests', async () => {
    const { store, result } = await build('skopeo/model', modelDir({ 'model.bin': pseudoRandomBytes(100_000, 4), 'config.json': '{}' }));
    const raw = execFileSync('skopeo', ['inspect', '--raw', `oci:${store}/skopeo/model:latest`]);
    assert.equal(sha256Digest(raw), result.indexDigest);
    const copy = tempDir('depot-skopeo-');
    execFileSync('skopeo', ['copy', '--all', '--preserve-digests', `oci:${store}/skopeo/model:latest`, `oci:${copy}:latest`], { stdio: 'pipe' });
    const copied = JSON.parse(readFileSync(path.join(copy, 'index.json'), 'utf8')) as ImageIndex;
    assert.equal(copied.manifests[0].digest, result.indexDigest);
    assert.ok(existsSync(path.join(copy, 'blobs/sha256', result.layerDigest.slice(7))));
    await verifyStoredImage(store, 'skopeo/model', 'latest');
  });
});

describe('depot-ai build', () => {
  test('prints a summary', async () => {
    const store = tempDir('depot-store-');
    const run = await depotAi(['build', 'cli/model', '--from', modelDir({ 'a.txt': 'hello' }), '--store', store, '--tag', 'v1', '--sha', SHA]);
    assert.equal(run.status, 0, run.stderr);
    for (const field of ['image         cli/model:v1', 'index         sha256:', 'layer', 'uncompressed', 'files         1', 'time']) {
      assert.ok(run.stdout.includes(field), `summary has "${field}":\n${run.stdout}`);
    }
  });

  test('takes tag and sha from the catalog for listed models', async () => {
    const store = tempDir('depot-store-');
    const run = await depotAi(['build', 'gpt2', '--from', modelDir({ 'a.txt': 'x' }), '--store', store]);
    assert.equal(run.status, 0, run.stderr);
    const tagged = (await new ImageLayout(store, 'gpt2').resolveTag('latest'))!;
    assert.equal(tagged.annotations![ANNOTATION.revision], '11c5a3d5811f50298f278a704980280950aedb10');
  });

  const badInputs: Array<[string, () => string[], RegExp]> = [
    ['a missing folder', () => ['build', 'bad/missing', '--from', '/nonexistent/folder'], /\/nonexistent\/folder is not a folder/],
    ['an invalid name', () => ['build', 'bad--name/x', '--from', modelDir({ a: 'a' })], /must not contain "--"/],
    ['an invalid tag', () => ['build', 'bad/tag', '--from', modelDir({ a: 'a' }), '--tag', 'v1:latest'], /tag "v1:latest" is not a valid tag/],
    ['an invalid sha', () => ['build', 'bad/sha', '--from', modelDir({ a: 'a' }), '--sha', 'main'], /40 lower-case hex/],
    ['no --from', () => ['build', 'bad/nofrom'], /needs --from DIR/],
    ['an unknown option', () => ['build', 'bad/opt', '--from', '.', '--colour'], /Unknown option '--colour'/],
    [
      'an unreadable file',
      () => {
        const dir = modelDir({ 'good.bin': pseudoRandomBytes(DEFAULT_CHUNK_SIZE * 2, 5) });
        symlinkSync('/nonexistent/target', path.join(dir, 'zz-broken.bin'));
        return ['build', 'bad/unreadable', '--from', dir];
      },
      /zz-broken\.bin: broken symbolic link/,
    ],
    ['a reserved name', () => ['build', 'bad/reserved', '--from', modelDir({ 'stargz.index.json': '{}' })], /reserved by the eStargz format/],
  ];
  for (const [what, args, message] of badInputs) {
    test(`${what}: one clear line, non-zero exit, nothing in the store`, async () => {
      const store = tempDir('depot-store-');
      const run = await depotAi([...args(), '--store', store]);
      assert.notEqual(run.status, 0);
      assert.match(run.stderr, message);
      assert.equal(run.stderr.trim().split('\n').length, 1, `one line:\n${run.stderr}`);
      assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
      const left = readdirSync(store).filter((entry) => entry !== '.tmp');
      assert.deepEqual(left, [], 'no image folder');
      if (existsSync(path.join(store, '.tmp'))) assert.deepEqual(readdirSync(path.join(store, '.tmp')), [], 'no temp file');
    });
  }
});
