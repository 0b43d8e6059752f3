// `build --prefetch`: files listed before the eStargz prefetch landmark. The layer's order is the
// reference writer's (estargz.Build with the same prioritised files), prefetched files come
// before the landmark's offset, the reference reader accepts the layer and a plain tar read
// gives back every source file; without the option (or when it selects nothing) the layer is
// the default one. With prefetch on in the real stargz snapshotter, the prefetched files are
// read through the mount without another request to the registry (and without the option they
// are not: the control).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { PREFETCH_LANDMARK, NO_PREFETCH_LANDMARK, type TocEntry } from '../image/estargz.ts';
import { fileReadAt } from '../image/read-at.ts';
import { readToc } from '../image/toc.ts';
import { depotAi } from './helpers/cli.ts';
import { startContainerd } from './helpers/containerd.ts';
import { verifyStoredImage } from './helpers/estargz.ts';
import { buildImage, imageDigests, pseudoRandom, ROOT, startTestRegistry, tempDir, tool, type TestRegistry } from './helpers/registry.ts';

const run = promisify(execFile);
const ESTARGZ_BUILD = tool(path.join(ROOT, 'tools/bin/estargz-build'));

/** A model folder: what `small` takes (configs, tokenizers, *.txt, nested JSON) and what it leaves. */
const FILES: Record<string, Buffer> = {
  'config.json': Buffer.from(JSON.stringify({ model_type: 'tiny', hidden_size: 8 }, null, 2)),
  'tokenizer.json': Buffer.from(JSON.stringify({ version: '1.0', vocab: Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`t${i}`, i])) })),
  'tokenizer.model': pseudoRandom('spm', 20_000),
  'vocab.txt': Buffer.from('a\nb\nc\n'),
  'README.md': Buffer.from('# tiny\n'),
  'model.safetensors': pseudoRandom('weights', 5 * 1024 * 1024 + 123),
  'big.json': Buffer.alloc(16 * 1024 * 1024 + 1, '{}'), // over small's size limit
  'text_encoder/config.json': Buffer.from('{"layers": 2}'),
  'text_encoder/model.bin': pseudoRandom('encoder', 70_000),
  'unet/diffusion.bin': pseudoRandom('unet', 50_000),
};
/** What `--prefetch small` must put first, in archive order, folders before what they hold. */
const SMALL_FIRST = ['config.json', 'text_encoder/', 'text_encoder/config.json', 'tokenizer.json', 'tokenizer.model', 'vocab.txt'];

let src: string;
let store: string;
before(async () => {
  src = await tempDir('prefetch-src');
  store = await tempDir('prefetch-store');
  for (const [name, bytes] of Object.entries(FILES)) {
    await mkdir(path.dirname(path.join(src, name)), { recursive: true });
    await writeFile(path.join(src, name), bytes);
  }
});
after(async () => {
  await rm(src, { recursive: true, force: true });
  await rm(store, { recursive: true, force: true });
});

async function layerOf(name: string): Promise<{ blob: string; entries: TocEntry[] }> {
  const { layer } = await imageDigests(store, name, 'v1');
  const blob = path.join(store, ...name.split('/'), 'blobs/sha256', layer.slice(7));
  const reader = await fileReadAt(blob);
  try {
    const read = await readToc(reader.readAt, reader.size);
    assert.ok(read, `${name}: an eStargz TOC`);
    return { blob, entries: read.toc.entries };
  } finally {
    await reader.close();
  }
}

/** File and folder names in TOC order (chunks left out), folders without their trailing slash. */
const names = (entries: TocEntry[]) => entries.filter((e) => e.type !== 'chunk').map((e) => e.name.replace(/^\.\//, '').replace(/\/$/, ''));

describe('the prefetch layer', () => {
  let small: { blob: string; entries: TocEntry[] };
  before(async () => {
    await buildImage('prefetch/small', src, store, 'v1', ['--prefetch', 'small']);
    small = await layerOf('prefetch/small');
  });

  test('prefetched files (after their folders) come first, then the landmark, then the rest in archive order', () => {
    const order = names(small.entries);
    const rest = Object.keys(FILES).flatMap((f) => (f.includes('/') ? [`${f.split('/')[0]}/`, f] : [f]));
    const expectedRest = [...new Set(rest)].filter((n) => !SMALL_FIRST.includes(n)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    assert.deepEqual(order, [...SMALL_FIRST, PREFETCH_LANDMARK, ...expectedRest].map((n) => n.replace(/\/$/, '')));
    assert.ok(!order.includes(NO_PREFETCH_LANDMARK));
    // What the snapshotter fetches at mount is the layer up to the landmark's offset.
    const landmark = small.entries.find((e) => e.name === PREFETCH_LANDMARK)!.offset!;
    for (const e of small.entries) {
      if (e.offset === undefined) continue;
      const first = SMALL_FIRST.includes(e.name);
      assert.ok(first ? e.offset < landmark : e.offset >= landmark, `${e.name} at ${e.offset}, landmark at ${landmark}`);
    }
  });

  test('the same order as the reference writer (estargz.Build with these prioritised files)', async () => {
    const dir = await tempDir('prefetch-ref');
    try {
      await buildImage('prefetch/plain', src, store, 'v1');
      const plain = await layerOf('prefetch/plain');
      const tar = path.join(dir, 'in.tar');
      const out = path.join(dir, 'out.gz');
      // The default layer's tar stream, without the TOC entry: the reference ignores landmarks.
      const stream = gunzipSync(await readFile(plain.blob));
      await writeFile(tar, stream);
      const prioritized = SMALL_FIRST.filter((n) => !n.endsWith('/'));
      await run(ESTARGZ_BUILD, ['-prioritize', prioritized.join(','), tar, out]);
      const reader = await fileReadAt(out);
      const reference = await readToc(reader.readAt, reader.size);
      await reader.close();
      assert.ok(reference);
      const withoutToc = (list: string[]) => list.filter((n) => n !== 'stargz.index.json');
      assert.deepEqual(withoutToc(names(small.entries)), withoutToc(names(reference.toc.entries)));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('the reference reader accepts it, and a plain tar read gives back every file byte for byte', async () => {
    const report = await verifyStoredImage(store, 'prefetch/small', 'v1');
    assert.equal(report.files, Object.keys(FILES).length + 1); // and the landmark
    const out = await tempDir('prefetch-untar');
    try {
      await run('tar', ['-xzf', small.blob, '-C', out]);
      for (const [name, bytes] of Object.entries(FILES)) assert.ok((await readFile(path.join(out, name))).equals(bytes), name);
      assert.deepEqual((await readdir(out)).sort(), [PREFETCH_LANDMARK, 'README.md', 'big.json', 'config.json', 'model.safetensors', 'stargz.index.json', 'text_encoder', 'tokenizer.json', 'tokenizer.model', 'unet', 'vocab.txt']);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });

  test('without the option, or when it selects nothing, the layer is the default one', async () => {
    await buildImage('prefetch/none', src, store, 'v1');
    await buildImage('prefetch/nothing', src, store, 'v1', ['--prefetch', 'no-such-file*']);
    const none = await imageDigests(store, 'prefetch/none', 'v1');
    const nothing = await imageDigests(store, 'prefetch/nothing', 'v1');
    assert.equal(nothing.layer, none.layer);
    assert.notEqual(none.layer, (await imageDigests(store, 'prefetch/small', 'v1')).layer);
    const order = names((await layerOf('prefetch/none')).entries);
    assert.equal(order[0], NO_PREFETCH_LANDMARK);
    assert.ok(!order.includes(PREFETCH_LANDMARK));
  });

  test('an empty --prefetch pattern: one line, exit 2, nothing written', async () => {
    const empty = await tempDir('prefetch-empty');
    try {
      const run = await depotAi(['build', 'prefetch/empty', '--from', src, '--store', empty, '--prefetch', '']);
      assert.equal(run.status, 2);
      assert.match(run.stderr, /^depot-ai: --prefetch takes "small" or a file pattern such as "\*\.json", not ""\n$/);
      assert.deepEqual(await readdir(empty), []);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});

describe('the stargz snapshotter with prefetch on', () => {
  let registry: TestRegistry;
  before(async () => {
    await buildImage('prefetch/lazy-on', src, store, 'v1', ['--prefetch', 'small']);
    await buildImage('prefetch/lazy-off', src, store, 'v1');
    registry = await startTestRegistry({ store });
  });
  after(async () => {
    await registry?.close();
  });

  /** Layer GETs in serve's log, once it has been quiet for 300 ms (prefetch runs in the background). */
  async function layerRequests(layer: string): Promise<number> {
    for (let seen = -1; seen !== registry.lines.length; ) {
      seen = registry.lines.length;
      await new Promise((r) => setTimeout(r, 300));
    }
    return registry.lines.filter((l) => l.includes(` GET /v2/`) && l.includes(`/blobs/${layer} `)).length;
  }

  /** Requests for the layer while the `small` files are read through a mounted view after rpull. */
  async function requestsForSmallReads(name: string): Promise<number> {
    const digests = await imageDigests(store, name, 'v1');
    const config = JSON.parse(await readFile(path.join(store, ...name.split('/'), 'blobs/sha256', digests.config.slice(7)), 'utf8'));
    const containerd = await startContainerd({ prefetch: true });
    try {
      await containerd.rpull(`${registry.hostPort}/${name}:v1`);
      const root = await containerd.mountView(config.rootfs.diff_ids[0]);
      const before = await layerRequests(digests.layer);
      for (const file of SMALL_FIRST.filter((n) => !n.endsWith('/'))) assert.ok((await readFile(path.join(root, file))).equals(FILES[file]), `${name}: ${file}`);
      return (await layerRequests(digests.layer)) - before;
    } finally {
      await containerd.close();
    }
  }

  test('a --prefetch small image: config.json and the other small files need no further request', { timeout: 180_000 }, async () => {
    assert.equal(await requestsForSmallReads('prefetch/lazy-on'), 0);
  });

  test('the control: without --prefetch the same reads go to the registry', { timeout: 180_000 }, async () => {
    assert.ok((await requestsForSmallReads('prefetch/lazy-off')) > 0);
  });
});
