// Pull-through: the CNCF registry (Debian docker-registry) as upstream, behind a small proxy that
// counts requests and can cut or corrupt a transfer. Cold and warm pulls give the store's digests;
// concurrent misses fetch once; a failed or bad transfer caches nothing.
import assert from 'node:assert/strict';
import { sha256Digest } from '../image/oci.ts';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  errorCode,
  makeTestImage,
  pushLayout,
  raw,
  runTool,
  startCncfRegistry,
  startTestRegistry,
  tempDir,
  tool,
  type CncfRegistry,
  type TestImage,
  type TestRegistry,
} from './helpers/registry.ts';

for (const file of ['/usr/bin/docker-registry', '/usr/bin/skopeo']) tool(file);
const sha = sha256Digest;

interface Proxy {
  url: string;
  /** GET requests seen per path. */
  gets: Map<string, number>;
  /** For paths containing this text: send `cutAfter` bytes then kill the transfer (and call onCut). */
  fault?: { match: string; cutAfter?: number; corrupt?: boolean; onCut?: () => void };
  close(): Promise<void>;
}

async function startProxy(target: () => string): Promise<Proxy> {
  const proxy: Proxy = { url: '', gets: new Map(), close: async () => {} };
  const server: Server = createServer((req, res) => {
    if (req.method === 'GET') proxy.gets.set(req.url!, (proxy.gets.get(req.url!) ?? 0) + 1);
    const upstream = new URL(target());
    const out = request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host } },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        const fault = proxy.fault && req.url!.includes(proxy.fault.match) && req.method === 'GET' && up.statusCode === 200 ? proxy.fault : undefined;
        let sent = 0;
        up.on('data', (chunk: Buffer) => {
          if (fault?.corrupt && sent === 0) {
            chunk = Buffer.from(chunk);
            chunk[0] ^= 0xff;
          }
          if (fault?.cutAfter !== undefined && sent + chunk.length > fault.cutAfter) {
            res.write(chunk.subarray(0, fault.cutAfter - sent));
            fault.onCut?.();
            up.destroy();
            res.destroy();
            return;
          }
          sent += chunk.length;
          res.write(chunk);
        });
        up.on('end', () => res.end());
        up.on('error', () => res.destroy());
      },
    );
    out.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.destroy();
    });
    req.pipe(out);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  proxy.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  proxy.close = () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); });
  return proxy;
}

async function storeFiles(store: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(dir: string) {
    if (!existsSync(dir)) return;
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(path.relative(store, p));
    }
  }
  await walk(store);
  return out.sort();
}

describe('pull-through cache', () => {
  let image: TestImage;
  let second: TestImage;
  let third: TestImage;
  let cncf: CncfRegistry;
  let proxy: Proxy;
  let cache: string;
  let registry: TestRegistry;

  before(async () => {
    image = await makeTestImage({ name: 'Upstream/Model', tag: 'v1', weights: 5 * 1024 * 1024 });
    second = await makeTestImage({ name: 'Upstream/Second', tag: 'v1', weights: 3 * 1024 * 1024, store: image.store });
    third = await makeTestImage({ name: 'Upstream/Third', tag: 'v1', weights: 3 * 1024 * 1024, store: image.store });
    cncf = await startCncfRegistry();
    for (const img of [image, second, third]) await pushLayout(img.store, img.name, img.tag, cncf.hostPort);
    proxy = await startProxy(() => cncf.url);
    cache = await tempDir('cache');
    registry = await startTestRegistry({ store: cache, upstream: proxy.url });
  });
  after(async () => {
    await registry?.close();
    await proxy?.close();
    await cncf?.stop();
  });

  const copy = async (name: string, tag: string) => {
    const out = await tempDir('pulled');
    await runTool('/usr/bin/skopeo', ['copy', '--all', '--src-tls-verify=false', `docker://${registry.hostPort}/${name}:${tag}`, `oci:${out}:${tag}`]);
    const index = JSON.parse(await readFile(path.join(out, 'index.json'), 'utf8'));
    const blobs = (await readdir(path.join(out, 'blobs/sha256'))).sort();
    await rm(out, { recursive: true, force: true });
    return { digest: index.manifests[0].digest as string, blobs };
  };

  test('cold pull: same digests as the source store, and the cache now holds the image', async () => {
    const cold = await copy(image.name, image.tag);
    assert.equal(cold.digest, image.index);
    const source = (await readdir(path.join(image.store, 'upstream/model/blobs/sha256'))).filter((f) => !f.startsWith('.')).sort();
    assert.deepEqual(cold.blobs, source);
    const cached = (await readdir(path.join(cache, 'upstream/model/blobs/sha256'))).filter((f) => !f.startsWith('.')).sort();
    assert.deepEqual(cached, source);
    for (const f of cached) assert.equal(sha(await readFile(path.join(cache, 'upstream/model/blobs/sha256', f))), `sha256:${f}`);
    assert.equal(proxy.gets.get(`/v2/upstream/model/blobs/${image.layer}`), 1);
  });

  test('warm pull: same digests, served from the cache with no upstream blob fetch', async () => {
    const before = new Map(proxy.gets);
    const warm = await copy(image.name, image.tag);
    assert.equal(warm.digest, image.index);
    for (const [p, n] of proxy.gets) if (p.includes('/blobs/')) assert.equal(n, before.get(p), `${p} fetched again`);
  });

  test('concurrent misses for one blob fetch it from upstream once', async () => {
    const blob = `/v2/${second.name}/blobs/${second.layer}`;
    const results = await Promise.all(Array.from({ length: 8 }, () => raw(registry.url, blob)));
    for (const res of results) {
      assert.equal(res.status, 200);
      assert.equal(sha(res.body), second.layer);
    }
    assert.equal(proxy.gets.get(blob), 1);
    const manifests = await Promise.all(Array.from({ length: 6 }, () => raw(registry.url, `/v2/${second.name}/manifests/${second.manifest}`)));
    for (const res of manifests) assert.equal(sha(res.body), second.manifest);
    assert.equal(proxy.gets.get(`/v2/${second.name}/manifests/${second.manifest}`), 1);
  });

  test('a range of an uncached blob is passed through', async () => {
    const res = await raw(registry.url, `/v2/${third.name}/blobs/${third.layer}`, { headers: { Range: 'bytes=100-199' } });
    assert.equal(res.status, 206);
    assert.equal(res.body.length, 100);
    const full = await raw(cncf.url, `/v2/${third.name}/blobs/${third.layer}`);
    assert.ok(res.body.equals(full.body.subarray(100, 200)));
    // ... and the whole blob is cached in the background
    const cached = path.join(cache, 'upstream/third/blobs/sha256', third.layer.slice(7));
    for (let i = 0; i < 100 && !existsSync(cached); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(sha(await readFile(cached)), third.layer);
  });

  test('a corrupted transfer never reaches the store', async () => {
    const blob = `/v2/${third.name}/blobs/${third.config}`;
    proxy.fault = { match: third.config, corrupt: true };
    try {
      await assert.rejects(raw(registry.url, blob)); // the connection is cut before the last chunk
    } finally {
      proxy.fault = undefined;
    }
    const files = await storeFiles(cache);
    assert.ok(!files.some((f) => f.includes(third.config.slice(7))), 'corrupt blob was cached');
    assert.ok(!files.some((f) => f.startsWith('.tmp/') || path.basename(f).startsWith('.tmp')), `temp file left behind: ${files.join(', ')}`);
    const ok = await raw(registry.url, blob);
    assert.equal(ok.status, 200);
    assert.equal(sha(ok.body), third.config);
  });

  test('upstream stopped mid-transfer: the client sees a failure, nothing is cached, then 502s', async () => {
    const fourth = await makeTestImage({ name: 'Upstream/Fourth', tag: 'v1', weights: 6 * 1024 * 1024, store: image.store });
    await pushLayout(fourth.store, fourth.name, fourth.tag, cncf.hostPort);
    const blob = `/v2/${fourth.name}/blobs/${fourth.layer}`;
    const cncfDir = cncf.dir;
    const port = Number(new URL(cncf.url).port);
    proxy.fault = { match: fourth.layer, cutAfter: 1024 * 1024, onCut: () => void cncf.stop() };
    try {
      await assert.rejects(raw(registry.url, blob));
    } finally {
      proxy.fault = undefined;
    }
    await cncf.stop();
    const files = await storeFiles(cache);
    assert.ok(!files.some((f) => f.includes(fourth.layer.slice(7))), 'partial blob was cached');
    assert.ok(!files.some((f) => f.startsWith('.tmp/') || path.basename(f).startsWith('.tmp')), `temp file left behind: ${files.join(', ')}`);

    // With the upstream down: uncached things are a 502 OCI error, cached ones still serve.
    const before = await storeFiles(cache);
    const miss = await raw(registry.url, `/v2/${fourth.name}/manifests/${fourth.tag}`);
    assert.equal(miss.status, 502);
    assert.equal(errorCode(miss), 'UNKNOWN');
    const blobMiss = await raw(registry.url, blob);
    assert.equal(blobMiss.status, 502);
    assert.deepEqual(await storeFiles(cache), before);
    const hit = await raw(registry.url, `/v2/${image.name}/blobs/${image.layer}`);
    assert.equal(hit.status, 200);
    assert.equal(sha(hit.body), image.layer);

    // Upstream back: the blob is fetched, verified and cached.
    cncf = await startCncfRegistry({ dir: cncfDir, port });
    const ok = await raw(registry.url, blob);
    assert.equal(ok.status, 200);
    assert.equal(sha(ok.body), fourth.layer);
    assert.ok(existsSync(path.join(cache, 'upstream/fourth/blobs/sha256', fourth.layer.slice(7))));
  });

  test('unknown upstream names and blobs are 404s', async () => {
    const res = await raw(registry.url, '/v2/nobody/here/manifests/latest');
    assert.equal(res.status, 404);
    assert.equal(errorCode(res), 'MANIFEST_UNKNOWN');
    const blob = await raw(registry.url, `/v2/${image.name}/blobs/sha256:${'1'.repeat(64)}`);
    assert.equal(blob.status, 404);
    assert.equal(errorCode(blob), 'BLOB_UNKNOWN');
  });
});

describe('pull-through: cached tags follow the upstream', () => {
  let first: TestImage;
  let moved: TestImage;
  let local: TestImage;
  let cncf: CncfRegistry;
  let rechecking: TestRegistry;
  let holding: TestRegistry;

  before(async () => {
    // Two builds of one name and tag: the upstream's tag moves from the first to the second.
    first = await makeTestImage({ name: 'Moving/Model', tag: 'latest', weights: 100_000, seed: 'first' });
    moved = await makeTestImage({ name: 'Moving/Model', tag: 'latest', weights: 100_000, seed: 'moved' });
    cncf = await startCncfRegistry();
    await pushLayout(first.store, first.name, first.tag, cncf.hostPort);
    // An image built into the cache itself, which the upstream has never heard of.
    const cache = await tempDir('cache-ttl');
    local = await makeTestImage({ name: 'Only/Here', tag: 'v1', weights: 10_000, store: cache });
    rechecking = await startTestRegistry({ store: cache, upstream: cncf.url, tagTtlMs: 0 });
    holding = await startTestRegistry({ store: await tempDir('cache-ttl'), upstream: cncf.url, tagTtlMs: 3_600_000 });
  });
  after(async () => {
    await rechecking?.close();
    await holding?.close();
    await cncf?.stop();
  });

  const INDEX_ACCEPT = { Accept: 'application/vnd.oci.image.index.v1+json' };
  const tagDigest = async (registry: TestRegistry, name: string, tag: string) => {
    const res = await raw(registry.url, `/v2/${name}/manifests/${tag}`, { headers: INDEX_ACCEPT });
    assert.equal(res.status, 200, res.body.toString());
    assert.equal(sha(res.body), res.headers['docker-content-digest']);
    return res.headers['docker-content-digest'];
  };

  test('a tag that moved upstream is served moved once its TTL has passed, and not before', async () => {
    assert.equal(await tagDigest(rechecking, first.name, 'latest'), first.index);
    assert.equal(await tagDigest(holding, first.name, 'latest'), first.index);
    await pushLayout(moved.store, moved.name, moved.tag, cncf.hostPort);
    assert.equal(await tagDigest(rechecking, first.name, 'latest'), moved.index);
    assert.equal(await tagDigest(holding, first.name, 'latest'), first.index, 'within its TTL the cached tag stands');
    // The moved image is whole in the cache: skopeo copies it through the registry.
    const out = await tempDir('pulled');
    await runTool('/usr/bin/skopeo', ['copy', '--all', '--src-tls-verify=false', `docker://${rechecking.hostPort}/${moved.name}:latest`, `oci:${out}:latest`]);
    const index = JSON.parse(await readFile(path.join(out, 'index.json'), 'utf8'));
    assert.equal(index.manifests[0].digest, moved.index);
    await rm(out, { recursive: true, force: true });
  });

  test("the tag list through the pull-through: the upstream's tags with those cached, a tag pushed upstream since listed at once", async () => {
    const tags = async (registry: TestRegistry, name: string) => {
      const res = await raw(registry.url, `/v2/${name}/tags/list`);
      assert.equal(res.status, 200, res.body.toString());
      return JSON.parse(res.body.toString()).tags as string[];
    };
    const name = first.name.toLowerCase();
    await tagDigest(holding, first.name, 'latest'); // the repository is now in the cache, with one tag
    await pushLayout(first.store, first.name, first.tag, cncf.hostPort, `${name}:pushed-since`);
    assert.deepEqual(await tags(holding, name), ['latest', 'pushed-since']);
    assert.deepEqual(await tags(rechecking, local.name.toLowerCase()), ['v1'], 'a repository only the cache holds');
  });

  test('a tag only the cache holds is served as it is', async () => {
    assert.equal(await tagDigest(rechecking, local.name, local.tag), local.index);
  });

  test('a revision tag (40 hex) is never rechecked: moved upstream, the mirror keeps what it cached, even with TTL 0', async () => {
    const revision = 'a'.repeat(40);
    const before = await makeTestImage({ name: 'Moving/Revision', sha: revision, weights: 10_000, seed: 'rev-first' });
    const after = await makeTestImage({ name: 'Moving/Revision', sha: revision, weights: 10_000, seed: 'rev-moved' });
    await pushLayout(before.store, before.name, revision, cncf.hostPort);
    assert.equal(await tagDigest(rechecking, before.name, revision), before.index);
    await pushLayout(after.store, after.name, revision, cncf.hostPort); // a registry can move it; ours never follows
    assert.equal(await tagDigest(rechecking, before.name, revision), before.index);
    assert.equal(await tagDigest(rechecking, before.name, revision), before.index);
  });

  // An upstream's revision tag briefly on another revision's index (or an unlabelled one) must not be kept for good.
  test('a revision tag whose upstream manifest is labelled with another revision, or none, is not cached: 502 JSON, then the honest one once fixed', async () => {
    const [asked, other] = ['b'.repeat(40), 'c'.repeat(40)];
    const name = 'poisoned/revision';
    const copyAs = (image: TestImage) => runTool('/usr/bin/skopeo', ['copy', '-q', '--all', '--preserve-digests', '--dest-tls-verify=false', `oci:${path.join(image.store, ...name.split('/'))}:${image.tag}`, `docker://${cncf.hostPort}/${name}:${asked}`]);
    for (const [seed, revision] of [['poison-other', other], ['poison-none', undefined]] as const) {
      await copyAs(await makeTestImage({ name, sha: revision, weights: 10_000, seed }));
      const res = await raw(rechecking.url, `/v2/${name}/manifests/${asked}`, { headers: INDEX_ACCEPT });
      assert.equal(res.status, 502, res.body.toString());
      assert.equal(errorCode(res), 'UNKNOWN');
      assert.match(res.body.toString(), new RegExp(`labelled revision ${revision ? `\\\\"${revision}\\\\"` : 'null'}: not cached`));
    }
    const honest = await makeTestImage({ name, sha: asked, weights: 10_000, seed: 'poison-honest' });
    await copyAs(honest);
    assert.equal(await tagDigest(rechecking, name, asked), honest.index);
  });

  test('with the upstream down, a cached tag is still served, and the cached tag list', async () => {
    await cncf.stop();
    assert.equal(await tagDigest(rechecking, moved.name, 'latest'), moved.index);
    const list = await raw(holding.url, `/v2/${first.name.toLowerCase()}/tags/list`);
    assert.equal(list.status, 200, list.body.toString());
    assert.deepEqual(JSON.parse(list.body.toString()).tags, ['latest']);
    assert.equal(await tagDigest(rechecking, local.name, local.tag), local.index);
  });
});
