// Issue 11's building blocks: deflate settings chosen per member from the data, a layer written
// into any byte sink (byte-identical to the store's), and the Hub streamed through a bounded disk
// window (ranged requests ahead of the writer, resumed when cut, each file verified as it ends).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, test, after, before } from 'node:test';
import { constants } from 'node:zlib';
import { buildImage } from '../builder/build.ts';
import { normalFp16, safetensors } from '../examples/safetensors.ts';
import { chooseDeflate, DEFAULT_DEFLATE } from '../image/deflate.ts';
import { layerSizeBound, writeLayer } from '../image/layer.ts';
import { ImageLayout } from '../image/layout.ts';
import { FolderSource } from '../sources/folder.ts';
import { HuggingFaceSource } from '../sources/huggingface.ts';
import { hubResolveUrl } from '../sources/hub-url.ts';
import { verifyStoredImage } from './helpers/estargz.ts';
import { sha256, startHubServer, type HubServer } from './helpers/hub-server.ts';
import { modelDir, pseudoRandomBytes, tempDir } from './helpers/models.ts';

const MiB = 1 << 20;
const SHA = '0123456789abcdef0123456789abcdef01234567';

/** JSON-like text that deflate's string matching shrinks well. */
function vocabulary(bytes: number, seed: number): string {
  const words: string[] = [];
  for (let i = 0, length = 0; length < bytes; i++) length += words[words.push(`"tok${((i * 7919 + seed) % 50000).toString(36)}":${i}`) - 1].length + 1;
  return `{${words.join(',')}}`;
}

// A model of every kind of data: fp16 weights (Z_RLE), incompressible bytes (stored), text (default).
const MODEL = {
  'config.json': JSON.stringify({ model_type: 'llama', hidden_size: 64 }),
  'model-00001-of-00002.safetensors': safetensors({ 'a.weight': [3 * 1024, 1024] }, 1),
  'model-00002-of-00002.safetensors': safetensors({ 'b.weight': [2 * 1024, 1024] }, 2),
  'packed/archive.zip': pseudoRandomBytes(3 * MiB + 17, 5),
  'tokenizer.json': vocabulary(2 * MiB, 3),
  'empty.txt': '',
};
/** Many files of a few bytes each: the window must count the disk blocks they take, not their bytes. */
const MANY = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`small/f${i}.txt`, `file ${i} `.repeat(1 + (i % 7))]));
const MODEL_BYTES = Object.values(MODEL).reduce((sum, v) => sum + Buffer.byteLength(v), 0);

describe('deflate settings chosen from the data', () => {
  test('text keeps the default, fp16 weights take Z_RLE, incompressible bytes are stored; the same bytes always choose the same', () => {
    for (let seed = 1; seed <= 4; seed++) {
      const text = Buffer.from(vocabulary(MiB, seed));
      const weights = normalFp16(MiB, seed);
      const random = pseudoRandomBytes(MiB, seed);
      assert.deepEqual(chooseDeflate(text), DEFAULT_DEFLATE, `text, seed ${seed}`);
      assert.equal(chooseDeflate(weights).strategy, constants.Z_RLE, `weights, seed ${seed}`);
      assert.equal(chooseDeflate(random).level, 0, `random, seed ${seed}`);
      assert.deepEqual(chooseDeflate(Buffer.from(weights)), chooseDeflate(weights));
    }
    assert.deepEqual(chooseDeflate(pseudoRandomBytes(1000, 1)), DEFAULT_DEFLATE, 'small members keep the default');
  });

  test('a layer mixing all three passes the reference reader, and its size stays within 1% of level 6 everywhere', async () => {
    const dir = modelDir(MODEL);
    const store = tempDir('depot-stream-store-');
    const chosen = await buildImage({ name: 'mixed/model', source: new FolderSource(dir), store, tag: 'chosen', sha: SHA });
    // Another store: the same revision at another level is another digest, and a revision tag never moves.
    const level6Store = tempDir('depot-stream-store-');
    const level6 = await buildImage({ name: 'mixed/model', source: new FolderSource(dir), store: level6Store, tag: 'level6', sha: SHA, level: 6 });
    await verifyStoredImage(store, 'mixed/model', 'chosen');
    await verifyStoredImage(level6Store, 'mixed/model', 'level6');
    assert.ok(Math.abs(chosen.compressedSize - level6.compressedSize) / level6.compressedSize < 0.01, `${chosen.compressedSize} vs ${level6.compressedSize}`);
    const again = await buildImage({ name: 'mixed/model', source: new FolderSource(dir), store, tag: 'again', sha: SHA });
    assert.equal(again.layerDigest, chosen.layerDigest, 'deterministic');
  });
});

describe('the layer into any byte sink', () => {
  test('a slow sink receives exactly the bytes the store holds, with the same digest, size, diffID and TOC digest', async () => {
    const dir = modelDir(MODEL);
    const store = tempDir('depot-stream-store-');
    const built = await buildImage({ name: 'sink/model', source: new FolderSource(dir), store, tag: 'v1', sha: SHA });
    const parts: Buffer[] = [];
    let writing = false;
    const layer = await writeLayer(new FolderSource(dir), {
      write: async (bytes) => {
        assert.equal(writing, false, 'one write at a time');
        writing = true;
        await new Promise((r) => setTimeout(r, 2));
        parts.push(Buffer.from(bytes));
        writing = false;
      },
    });
    const streamed = Buffer.concat(parts);
    assert.equal(layer.digest, built.layerDigest);
    assert.equal(layer.size, streamed.length);
    assert.equal(`sha256:${createHash('sha256').update(streamed).digest('hex')}`, layer.digest);
    assert.deepEqual(streamed, readFileSync(new ImageLayout(store, 'sink/model').blobPath(built.layerDigest)));
  });
});

describe('the most disk a staged layer takes', () => {
  test('layerSizeBound is never below the written layer: many tiny files, long and non-ASCII names, deep folders, incompressible chunks', async () => {
    const CHUNK = 64 << 10;
    const kinds: Record<string, Record<string, string | Buffer>> = {
      tiny: Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`d${i % 10}/f${i}`, `${i}`.padStart(10, 'x')])),
      names: Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`${'ü'.repeat(40 + i)}/${'\u0001"\\'.repeat(30)}${i}.bin`, pseudoRandomBytes(100 + i, i)])),
      deep: { [`${Array.from({ length: 40 }, (_, i) => `level${i}`).join('/')}/x.json`]: '{}', 'empty.txt': '' },
      chunks: { 'a.bin': pseudoRandomBytes(5 * CHUNK, 1), 'b.bin': pseudoRandomBytes(3 * CHUNK + 1, 2), 'c.bin': pseudoRandomBytes(CHUNK - 1, 3) },
    };
    for (const [kind, files] of Object.entries(kinds)) {
      const source = new FolderSource(modelDir(files));
      const listed = await source.list();
      let size = 0;
      await writeLayer(source, { write: async (bytes) => void (size += bytes.length) }, { chunkSize: CHUNK });
      const bound = layerSizeBound(listed, CHUNK);
      const input = listed.reduce((sum, f) => sum + f.size, 0);
      assert.ok(size <= bound, `${kind}: the layer has ${size} bytes, the bound says ${bound}`);
      assert.ok(size > input, `${kind}: the layer (${size}) is bigger than its files (${input}): the input size alone is no bound`);
    }
  });
});

describe('streaming from the Hub through a bounded disk window', () => {
  let hub: HubServer;
  const name = 'Stream-Org/Big-Model';
  const window = 4 * MiB;
  let folderDigest: string;
  before(async () => {
    hub = await startHubServer({
      repos: [
        { name, private: true, commits: [{ files: MODEL }] },
        { name: 'Stream-Org/Tampered', commits: [{ files: MODEL }], tamper: { 'model-00002-of-00002.safetensors': safetensors({ 'b.weight': [2 * 1024, 1024] }, 9) } },
        { name: 'Stream-Org/Many', commits: [{ files: MANY }] },
        { name: 'Stream-Org/Shorter', commits: [{ files: MODEL }], tamper: { 'config.json': Buffer.from(MODEL['config.json'].slice(0, 10)) } },
        { name: 'Stream-Org/Longer', commits: [{ files: MODEL }], tamper: { 'tokenizer.json': Buffer.from(`${MODEL['tokenizer.json']} `) } },
      ],
    });
    const built = await buildImage({ name, source: new FolderSource(modelDir(MODEL)), store: tempDir('depot-stream-store-'), tag: 'v1', sha: SHA });
    folderDigest = built.layerDigest;
  });
  after(() => hub?.close());

  const source = (repo: string, spoolDir: string) =>
    new HuggingFaceSource(repo, hub.head(repo), { hubUrl: hub.url, token: hub.token, windowBytes: window, spoolDir, concurrency: 3 });

  /** Peak disk (allocated blocks) of the spool folder, sampled while `work` runs. */
  async function watchDisk<T>(dir: string, work: Promise<T>): Promise<{ result: T; peak: number }> {
    let peak = 0;
    let running = true;
    const sample = () => {
      let bytes = 0;
      for (const name of readdirSync(dir, { recursive: true }) as string[]) {
        const info = statSync(path.join(dir, name), { throwIfNoEntry: false });
        if (info?.isFile()) bytes += Math.max(info.size, info.blocks * 512);
      }
      peak = Math.max(peak, bytes);
    };
    const poller = (async () => {
      while (running) {
        sample();
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    try {
      return { result: await work, peak };
    } finally {
      running = false;
      await poller;
    }
  }

  test('a model larger than the window builds identical to the folder build; disk never exceeds the window; the token stays on the Hub', async () => {
    assert.ok(MODEL_BYTES > 2 * window, 'the model is bigger than the window');
    const spool = tempDir('depot-spool-');
    const store = tempDir('depot-stream-store-');
    const hf = source(name, spool);
    const started = hub.requests.length;
    const { result, peak } = await watchDisk(spool, buildImage({ name, source: hf, store, tag: 'v1', sha: hub.head(name) }));
    assert.equal(result.layerDigest, folderDigest);
    await verifyStoredImage(store, name.toLowerCase(), 'v1');
    assert.ok(hf.peakWindowBytes <= window && peak <= window, `spool peak ${peak}, accounted ${hf.peakWindowBytes}, window ${window}`);
    assert.ok(hf.peakWindowBytes > window / 2, 'the window was used to run ahead');
    assert.deepEqual(readdirSync(spool), [], 'the spool is removed');
    const requests = hub.requests.slice(started);
    const ranged = requests.filter((r) => r.origin === 'storage' && r.range);
    assert.ok(ranged.length >= 4, `big files are fetched in ranged segments (${ranged.length})`);
    assert.ok(requests.filter((r) => r.origin === 'storage').every((r) => !r.authorization), 'no token to the storage host');
    assert.ok(requests.filter((r) => r.origin === 'hub' && r.url.includes('/resolve/')).every((r) => r.authorization === `Bearer ${hub.token}`));
  });

  test('many small files stay within the window in disk blocks, and the downloads leave no abort listener behind', async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`);
    process.on('warning', onWarning);
    const spool = tempDir('depot-spool-');
    const repo = 'Stream-Org/Many';
    const hf = new HuggingFaceSource(repo, hub.head(repo), { hubUrl: hub.url, windowBytes: 64 << 10, spoolDir: spool, concurrency: 8 });
    try {
      const { result, peak } = await watchDisk(spool, buildImage({ name: repo, source: hf, store: tempDir('depot-stream-store-'), tag: 'v1', sha: hub.head(repo) }));
      assert.equal(result.files, Object.keys(MANY).length);
      assert.ok(peak <= 64 << 10 && hf.peakWindowBytes <= 64 << 10, `spool peak ${peak} bytes on disk, accounted ${hf.peakWindowBytes}, window 64 KiB`);
    } finally {
      process.off('warning', onWarning);
    }
    assert.deepEqual(warnings.filter((w) => w.includes('MaxListeners')), []);
  });

  test('the file listing is retried past a 503 and a cut page; a listing that keeps being cut says what was being fetched', async () => {
    const delay = process.env.DEPOT_RETRY_DELAY_MS;
    process.env.DEPOT_RETRY_DELAY_MS = '10';
    try {
      for (const fault of [{ status: 503 }, { cutAfter: 20 }]) {
        hub.faults.push({ match: '/tree/', ...fault });
        const listed = await source(name, tempDir('depot-spool-')).list();
        assert.equal(listed.length, Object.keys(MODEL).length, JSON.stringify(fault));
        assert.equal(hub.faults.at(-1)!.times, 0, 'the fault was met');
        hub.faults.length = 0;
      }
      hub.faults.push({ match: '/tree/', cutAfter: 20, times: Infinity });
      await assert.rejects(source(name, tempDir('depot-spool-')).list(), new RegExp(`^Error: ${name} at [0-9a-f]{40}: listing the files failed: terminated$`));
    } finally {
      hub.faults.length = 0;
      if (delay === undefined) delete process.env.DEPOT_RETRY_DELAY_MS;
      else process.env.DEPOT_RETRY_DELAY_MS = delay;
    }
  });

  test('a connection cut mid-segment resumes from the byte it reached', async () => {
    const weights = sha256(Buffer.from(MODEL['model-00001-of-00002.safetensors']));
    hub.faults.push({ match: weights, when: (r) => /^bytes=0-/.test(r.range ?? ''), cutAfter: 300_000 });
    const started = hub.requests.length;
    const spool = tempDir('depot-spool-');
    const result = await buildImage({ name, source: source(name, spool), store: tempDir('depot-stream-store-'), tag: 'v1', sha: hub.head(name) });
    assert.equal(result.layerDigest, folderDigest);
    const starts = hub.requests.slice(started).filter((r) => r.url.includes(weights) && r.range).map((r) => Number(/^bytes=(\d+)-/.exec(r.range!)![1]));
    assert.ok(starts.some((start) => start > 0 && start <= 300_000), `a request resumed from the cut, not from the segment's start: ${starts.join(' ')}`);
  });

  test('an LFS file whose bytes do not match fails the build with one clear error; nothing is tagged and the spool is gone', async () => {
    const spool = tempDir('depot-spool-');
    const store = tempDir('depot-stream-store-');
    const repo = 'Stream-Org/Tampered';
    await assert.rejects(
      buildImage({ name: repo, source: source(repo, spool), store, tag: 'v1', sha: hub.head(repo) }),
      /model-00002-of-00002\.safetensors: sha256 mismatch: expected [0-9a-f]{64}, got [0-9a-f]{64}/,
    );
    assert.equal(await new ImageLayout(store, repo.toLowerCase()).resolveTag('v1'), undefined);
    assert.deepEqual(readdirSync(spool), []);
    const blobs = path.join(store, repo.toLowerCase(), 'blobs', 'sha256');
    assert.ok(!existsSync(blobs) || readdirSync(blobs).length === 0, 'no blob written');
  });

  test('a file served shorter or longer than listed fails naming the file and both sizes, not a 416', async () => {
    for (const [repo, file, how] of [['Stream-Org/Shorter', 'config.json', 'fewer'], ['Stream-Org/Longer', 'tokenizer.json', 'more']]) {
      const spool = tempDir('depot-spool-');
      const listed = Buffer.byteLength(MODEL[file as keyof typeof MODEL]);
      await assert.rejects(
        buildImage({ name: repo, source: source(repo, spool), store: tempDir('depot-stream-store-'), tag: 'v1', sha: hub.head(repo) }),
        new RegExp(`^Error: ${file.replace('.', '\\.')}: the Hub serves ${how} bytes than the ${listed} it lists`),
      );
      assert.deepEqual(readdirSync(spool), []);
    }
  });

  test('resolve URLs encode each path segment', () => {
    assert.equal(hubResolveUrl('https://hub.test/', 'o/m', 'main', 'a b/c#d?.json'), 'https://hub.test/o/m/resolve/main/a%20b/c%23d%3F.json');
  });
});
