// The registry as a Cloudflare Worker over R2, run in workerd (Miniflare 3, R2 on disk): the same
// API conformance as `serve`, real clients (skopeo, buildah, the reference estargz reader reading
// lazily), the optional redirect of blob GETs, and pull-through from the CNCF registry into R2.
import assert from 'node:assert/strict';
import { cp, readdir, readFile, rm } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { SerializedBundle } from '@sigstore/bundle';
import { ImageLayout } from '../image/layout.ts';
import { sha256Digest } from '../image/oci.ts';
import { attestationArtifact, BUNDLE_ARTIFACT_TYPE, type ArtifactDescriptor } from '../trust/artifact.ts';
import { createApp } from '../registry/app.ts';
import { blobKey, R2_PART_LIMITS, R2Store, tagKey } from '../registry/r2-store.ts';
import { assertBuildahCopies } from './helpers/buildah.ts';
import { generatedSpecs, rangeHeader } from './helpers/byteranges.ts';
import { registryConformance } from './helpers/conformance.ts';
import { startRecordingProxy, type RecordingProxy } from './helpers/proxy.ts';
import {
  errorCode,
  makeTestImage,
  pushLayout,
  raw,
  ROOT,
  runTool,
  startCncfRegistry,
  startTestRegistry,
  tempDir,
  tool,
  type CncfRegistry,
  type RawResponse,
  type TestImage,
} from './helpers/registry.ts';
import { startTestWorker, type TestWorker } from './helpers/worker.ts';
import { configProblem } from '../registry/worker.ts';

for (const file of ['/usr/bin/docker-registry', '/usr/bin/skopeo', '/usr/bin/buildah']) tool(file);
const checker = tool(path.join(ROOT, 'tools/bin/estargz-check'));
const sha = sha256Digest;
const hostPort = (url: string) => new URL(url).host;

let image: TestImage;
let layer: Buffer;
let worker: TestWorker;
let referrer: ArtifactDescriptor;

before(async () => {
  // 20 MiB of weights: the layer is loaded into R2 as a multipart upload (8 MiB parts).
  image = await makeTestImage({ name: 'Test-Org/Tiny-Model', tag: 'v1', weights: 20 * 1024 * 1024 });
  layer = await readFile(path.join(image.store, ...image.name.split('/'), 'blobs/sha256', image.layer.slice(7)));
  // The Worker's store: the image plus an attestation-shaped referrer of its index, untagged in
  // index.json as `build --attest` stores it (a copy, so the image's own store stays the reference).
  const store = await tempDir('worker-store');
  await cp(image.store, store, { recursive: true });
  const layout = new ImageLayout(store, image.name);
  const bundle = { mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json' } as unknown as SerializedBundle;
  const artifact = attestationArtifact(bundle, (await layout.resolveTag('v1'))!, new Date(0));
  for (const blob of artifact.blobs) await layout.writeBlob(blob);
  await layout.addManifest(artifact.descriptor);
  referrer = artifact.descriptor;
  worker = await startTestWorker({ store });
});
after(async () => {
  await worker?.close();
  if (image) await rm(image.store, { recursive: true, force: true });
});

registryConformance(() => ({ url: worker.url, image, layer }), { dotSegments: false });

describe('the Worker', () => {
  test('dot segments are resolved by the platform before the Worker: nothing outside /v2/<name> is reachable', async () => {
    const outside = await raw(worker.url, '/v2/../../../../etc/passwd');
    assert.equal(outside.status, 404);
    assert.equal(errorCode(outside), 'NOT_FOUND');
    const resolved = await raw(worker.url, '/v2/test-org/../tiny-model/manifests/v1');
    assert.equal(resolved.status, 404);
    assert.equal(errorCode(resolved), 'NAME_UNKNOWN'); // it asked for "tiny-model"
    // Documented difference from serve (400 NAME_INVALID there): a path that resolves to a valid one is answered as that one.
    for (const p of ['/v2/test-org/tiny-model/../tiny-model/manifests/v1', '/v2/test-org\\tiny-model/manifests/v1']) {
      const res = await raw(worker.url, p, { method: 'HEAD' });
      assert.equal(res.status, 200, p);
      assert.equal(res.headers['docker-content-digest'], image.index, p);
    }
  });

  test('R2 holds the layout the README documents', async () => {
    assert.equal(((await worker.bucket.head(blobKey(image.name, image.layer)))?.size), image.layerSize);
    const tag = await worker.bucket.get(tagKey(image.name, 'v1'));
    assert.equal(await tag?.text(), image.index);
  });

  test("a blob GET is one R2 get: its range and If-Modified-Since go to R2 (range, onlyIf), no head first; what only the size settles falls back to head", async () => {
    const calls: string[] = [];
    const bucket = new Proxy(worker.bucket, {
      get(target, key) {
        const value = Reflect.get(target, key) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          const options = args[1] as { range?: unknown; onlyIf?: unknown } | undefined;
          calls.push(`${String(key)}${options?.range ? ' range' : ''}${options?.onlyIf ? ' onlyIf' : ''}`);
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const app = createApp({ store: new R2Store(bucket) });
    const path = `http://r2/v2/${image.name}/blobs/${image.layer}`;
    const lastModified = (await app.fetch(new Request(path, { method: 'HEAD' }))).headers.get('last-modified')!;
    const size = layer.length;
    const later = new Date(Date.parse(lastModified) + 1000).toUTCString();
    const earlier = new Date(Date.parse(lastModified) - 1000).toUTCString();
    const cases: { headers: Record<string, string>; status: number; bytes?: [number, number]; ops: string[] }[] = [
      { headers: {}, status: 200, bytes: [0, size - 1], ops: ['get'] },
      { headers: { Range: 'bytes=100-4195' }, status: 206, bytes: [100, 4195], ops: ['get range'] },
      { headers: { Range: `bytes=${size - 7}-` }, status: 206, bytes: [size - 7, size - 1], ops: ['get range'] },
      { headers: { Range: 'bytes=-33' }, status: 206, bytes: [size - 33, size - 1], ops: ['get range'] },
      { headers: { Range: `bytes=5-${size * 3}` }, status: 206, bytes: [5, size - 1], ops: ['get range'] },
      { headers: { 'If-Modified-Since': lastModified }, status: 304, ops: ['get onlyIf'] },
      { headers: { 'If-Modified-Since': later, Range: 'bytes=0-9' }, status: 304, ops: ['get range onlyIf'] },
      { headers: { 'If-Modified-Since': earlier, Range: 'bytes=0-9' }, status: 206, bytes: [0, 9], ops: ['get range onlyIf'] },
      { headers: { 'If-Modified-Since': 'not a date' }, status: 200, bytes: [0, size - 1], ops: ['get'] },
      { headers: { Range: `bytes=${size}-` }, status: 416, ops: ['get range', 'head'] },
      { headers: { Range: `bytes=${size + 10}-${size + 20}` }, status: 416, ops: ['get range', 'head'] },
      { headers: { Range: 'bytes=0-0,9-9' }, status: 206, ops: ['head', 'get range', 'get range'] },
      { headers: { Range: 'bytes=0-9', 'If-Range': `"${image.layer}"` }, status: 206, bytes: [0, 9], ops: ['head', 'get range'] },
      { headers: { 'If-None-Match': `"${image.layer}"` }, status: 304, ops: ['head'] },
    ];
    for (const { headers, status, bytes, ops } of cases) {
      calls.length = 0;
      const res = await app.fetch(new Request(path, { headers }));
      const body = Buffer.from(await res.arrayBuffer());
      const what = JSON.stringify(headers);
      assert.equal(res.status, status, what);
      assert.deepEqual(calls, ops, what);
      assert.equal(res.headers.get('last-modified') ?? lastModified, lastModified, what);
      if (status === 416) assert.equal(res.headers.get('content-range'), `bytes */${size}`, what);
      if (status === 304) assert.equal(body.length, 0, what);
      if (!bytes) continue;
      assert.ok(body.equals(layer.subarray(bytes[0], bytes[1] + 1)), what);
      assert.equal(res.headers.get('content-length'), String(body.length), what);
      if (status === 206) assert.equal(res.headers.get('content-range'), `bytes ${bytes[0]}-${bytes[1]}/${size}`, what);
    }
  });

  test('the referrers API lists what R2 holds (a store copied in with an attestation), filtered by artifactType', async () => {
    const res = await raw(worker.url, `/v2/${image.name}/referrers/${image.index}?artifactType=${encodeURIComponent(BUNDLE_ARTIFACT_TYPE)}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers['oci-filters-applied'], 'artifactType');
    const listed = JSON.parse(res.body.toString()).manifests as ArtifactDescriptor[];
    assert.deepEqual(listed.map((m) => [m.digest, m.artifactType]), [[referrer.digest, BUNDLE_ARTIFACT_TYPE]]);
    const none = await raw(worker.url, `/v2/${image.name}/referrers/${image.manifest}`);
    assert.deepEqual(JSON.parse(none.body.toString()).manifests, []);
  });

  test('skopeo copy --all to an OCI layout: identical digests and blobs', async () => {
    await assertSkopeoCopies(worker.url);
  });

  test('buildah: FROM scratch + COPY --from=<image on the Worker>: byte-identical files', { timeout: 300_000 }, async () => {
    const hp = hostPort(worker.url);
    await assertBuildahCopies(hp, `${hp}/${image.name}:v1`, image.files, 'model.safetensors');
  });

  test('the reference estargz reader reads one file lazily: right bytes, a small fraction of the layer', async () => {
    const manifest = JSON.parse(await readFile(path.join(image.store, ...image.name.split('/'), 'blobs/sha256', image.manifest.slice(7)), 'utf8'));
    const dir = await tempDir('worker-lazy');
    try {
      const out = path.join(dir, 'notes.txt');
      const { stdout } = await runTool(checker, [
        'read', '-url', `${worker.url}/v2/${image.name}/blobs/${image.layer}`,
        '-toc-digest', manifest.layers[0].annotations['containerd.io/snapshot/stargz/toc.digest'],
        '-file', 'nested/dir/notes.txt', '-out', out,
      ]);
      const report = JSON.parse(stdout) as { blobSize: number; fetched: number };
      assert.ok((await readFile(out)).equals(image.files['nested/dir/notes.txt']));
      assert.equal(report.blobSize, image.layerSize);
      assert.ok(report.fetched < report.blobSize / 50, `fetched ${report.fetched} of ${report.blobSize} bytes`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('several ranges: the same answer as serve, byte for byte but the boundary (same parts, boundary format, cap of 64)', async () => {
    const serve = await startTestRegistry({ store: image.store });
    /** The answer with its boundary replaced, and the boundary's shape (hex digits as 'h'). */
    const normalized = (res: RawResponse) => {
      const boundary = /boundary=(\S+)$/.exec(String(res.headers['content-type']))?.[1];
      const strip = (text: string) => (boundary ? text.replaceAll(boundary, 'BOUNDARY') : text);
      const headers = ['content-type', 'content-range', 'content-length'].map((h) => strip(String(res.headers[h])));
      return { status: res.status, headers, body: sha(Buffer.from(strip(res.body.toString('latin1')), 'latin1')), shape: boundary?.replace(/[0-9a-f]/g, 'h') };
    };
    try {
      let multipart = 0;
      for (let seed = 1; seed <= 40; seed++) {
        const header = rangeHeader(generatedSpecs(seed, layer.length), seed);
        const path = `/v2/${image.name}/blobs/${image.layer}`;
        const [fromWorker, fromServe] = await Promise.all([worker.url, serve.url].map((url) => raw(url, path, { headers: { Range: header } })));
        const [w, s] = [normalized(fromWorker), normalized(fromServe)];
        assert.deepEqual(w, s, `seed ${seed}: ${header.slice(0, 200)}`);
        if (w.shape) multipart++;
      }
      assert.ok(multipart >= 20, `only ${multipart} of 40 answers were multipart`);
    } finally {
      await serve.close();
    }
  });

  test('PUBLIC_BLOB_URL: a full blob GET is a 307 to the bucket key; ranges and misses are still served here', async () => {
    // Spellings `new URL` reads as one URL: the Location is built from the parsed URL, not the text.
    const spellings: [string, string][] = [
      ['https://blobs.example.test/', 'https://blobs.example.test'],
      ['HTTPS://Blobs.Example.Test:443', 'https://blobs.example.test'],
      ['https:/blobs.example.test//', 'https://blobs.example.test'],
      ['http:blobs.example.test:8080/depot/', 'http://blobs.example.test:8080/depot'],
      ['https://blobs.example.test/a/../depot', 'https://blobs.example.test/depot'],
    ];
    const [cdn, base] = spellings[randomInt(spellings.length)];
    const redirecting = await startTestWorker({ store: image.store, bindings: { PUBLIC_BLOB_URL: cdn } });
    try {
      const full = await raw(redirecting.url, `/v2/Test-Org/Tiny-Model/blobs/${image.layer}`);
      assert.equal(full.status, 307, cdn);
      assert.equal(full.headers['docker-distribution-api-version'], 'registry/2.0');
      assert.equal(full.headers.location, `${base}/blobs/test-org/tiny-model%40sha256%3A${image.layer.slice(7)}`, cdn);
      const range = await raw(redirecting.url, `/v2/${image.name}/blobs/${image.layer}`, { headers: { Range: 'bytes=10-4105' } });
      assert.equal(range.status, 206);
      assert.ok(range.body.equals(layer.subarray(10, 4106)));
      const missing = await raw(redirecting.url, `/v2/${image.name}/blobs/sha256:${'0'.repeat(64)}`);
      assert.equal(errorCode(missing), 'BLOB_UNKNOWN');
    } finally {
      await redirecting.close();
    }
  });
});

describe('configuration', () => {
  // A value without a scheme is the likely slip; each is also a string `new URL` accepts (localhost:5000 parses as scheme "localhost:").
  const bad = { UPSTREAM: ['registry.depot.ai', 'localhost:5000', 'ftp://registry.depot.ai'], PUBLIC_BLOB_URL: ['cdn.depot.ai', '//cdn.depot.ai'] };
  /** A value of `setting` with one careless part, and what configProblem must say of it. */
  const careless = (setting: 'UPSTREAM' | 'PUBLIC_BLOB_URL'): [string, RegExp] => {
    const origin = `http${randomInt(2) ? 's' : ''}://host-${randomBytes(3).toString('hex')}.example.test${randomInt(2) ? `:${randomInt(1, 65536)}` : ''}`;
    const secret = randomBytes(6).toString('hex');
    const kinds: [string, RegExp][] = [
      [[' ', '\n', '\r\n', '\t', '\x00', '\x7f'][randomInt(6)] + origin, /must have no spaces or control characters/],
      [origin + [' ', '\n', '\t', '\x1b', '\x7f'][randomInt(5)], /must have no spaces or control characters/],
      [origin.replace('://', `://${randomInt(2) ? 'puller' : ''}:${secret}@`), setting === 'UPSTREAM' ? /must not hold credentials.*UPSTREAM_USER and UPSTREAM_PASSWORD/ : /must not hold credentials/],
      [origin.replace('://', `://${secret}@`), /must not hold credentials/],
      [origin + ['/?sig=abc', '?x=1', '/#x', '?', '#'][randomInt(5)], /must have no query or fragment/],
    ];
    if (setting === 'UPSTREAM') kinds.push([origin + ['/mirror', '/v2/', '/v2', '//'][randomInt(4)], /must be the registry's origin with no path/]);
    return kinds[randomInt(kinds.length)];
  };

  test('configProblem: a URL setting with whitespace, control characters, user:password@, a query or fragment (or UPSTREAM a path) is refused, naming the setting, never quoting a secret', () => {
    for (let i = 0; i < 300; i++) {
      const setting = randomInt(2) ? 'UPSTREAM' : 'PUBLIC_BLOB_URL';
      const [value, says] = careless(setting);
      const problem = configProblem({ [setting]: value }) ?? '';
      assert.match(problem, new RegExp(`^${setting} must `), JSON.stringify(value));
      assert.match(problem, says, JSON.stringify(value));
      const userinfo = /:\/\/([^@/]*)@/.exec(value)?.[1];
      if (userinfo) assert.ok(!problem.includes(userinfo), `${problem} quotes the credentials`);
    }
    for (const fine of ['https://registry.depot.ai', 'http://127.0.0.1:5000/', 'http:registry.depot.ai']) assert.equal(configProblem({ UPSTREAM: fine }), undefined, fine);
    for (const fine of ['https://cdn.depot.ai/blobs/', 'https:/cdn.depot.ai', 'https://cdn.depot.ai/a@b']) assert.equal(configProblem({ PUBLIC_BLOB_URL: fine }), undefined, fine);
  });

  test('a deployed Worker with UPSTREAM or PUBLIC_BLOB_URL not an absolute http(s) URL, or careless: every request a 500 spec error naming the setting, no redirect', async () => {
    for (const [setting, values] of Object.entries(bad)) {
      const value = randomInt(2) ? values[randomInt(values.length)] : careless(setting as 'UPSTREAM' | 'PUBLIC_BLOB_URL')[0];
      const misconfigured = await startTestWorker({ store: image.store, bindings: { [setting]: value } });
      try {
        for (const [method, p] of [['GET', '/v2/'], ['GET', `/v2/${image.name}/manifests/v1`], ['GET', `/v2/${image.name}/blobs/${image.layer}`], ['HEAD', `/v2/${image.name}/blobs/${image.layer}`]]) {
          const res = await raw(misconfigured.url, p, { method });
          assert.equal(res.status, 500, `${setting}=${value}: ${method} ${p}`);
          assert.equal(res.headers.location, undefined);
          assert.match(String(res.headers['content-type']), /^application\/json/);
          if (method === 'GET') {
            assert.equal(errorCode(res), 'UNKNOWN');
            assert.match(JSON.parse(res.body.toString()).errors[0].message, new RegExp(`^registry misconfigured: ${setting} must `));
          }
        }
      } finally {
        await misconfigured.close();
      }
    }
  });

  test('npm run worker with DEPOT_UPSTREAM not an absolute http(s) URL: refuses to start with one line, exit 1', async () => {
    for (const value of bad.UPSTREAM.slice(0, 2)) {
      const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/worker.ts'], {
        cwd: ROOT,
        env: { ...process.env, PORT: '0', DEPOT_R2_DIR: await tempDir('bad-config-r2'), DEPOT_UPSTREAM: value },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
      child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      assert.equal(code, 1);
      assert.equal(out, '');
      assert.equal(err, `worker: UPSTREAM must be an absolute http(s) URL (e.g. https://registry.depot.ai), not ${JSON.stringify(value)} (from $DEPOT_UPSTREAM or wrangler.toml [vars])\n`);
    }
  });
});

describe('npm run worker', () => {
  test('serves a store copied into R2 at $PORT with R2 in $DEPOT_R2_DIR; the bucket outlives a restart; SIGTERM stops it', async () => {
    const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8'));
    assert.equal(pkg.scripts.worker, 'node --import tsx scripts/worker.ts');
    const r2Dir = await tempDir('npm-worker-r2');
    const run = async (env: Record<string, string>, check: (url: string) => Promise<void>) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/worker.ts'], {
        cwd: ROOT,
        env: { ...process.env, PORT: '0', DEPOT_R2_DIR: r2Dir, ...env },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      let out = '';
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
          out += chunk;
          const m = /listening on (http:\/\/127\.0\.0\.1:\d+) \(R2 in (.+)\)/.exec(out);
          if (m) resolve(m[1]);
        });
        void exited.then((code) => reject(new Error(`exited (${code}) before listening:\n${out}`)));
      });
      try {
        await check(url);
      } finally {
        child.kill('SIGTERM');
      }
      assert.equal(await exited, 0);
    };
    try {
      const manifest = async (url: string) => {
        const res = await raw(url, `/v2/${image.name}/manifests/v1`, { method: 'HEAD' });
        assert.equal(res.status, 200);
        assert.equal(res.headers['docker-content-digest'], image.index);
      };
      await run({ DEPOT_STORE: image.store }, manifest);
      await run({}, manifest); // nothing loaded this time: served from the bucket on disk
    } finally {
      await rm(r2Dir, { recursive: true, force: true });
    }
  });
});

describe('pull-through from the CNCF registry into R2', () => {
  let cncf: CncfRegistry;
  let proxy: RecordingProxy;
  let cold: TestWorker;

  before(async () => {
    cncf = await startCncfRegistry();
    await pushLayout(image.store, image.name, 'v1', cncf.hostPort);
    proxy = await startRecordingProxy(cncf.url);
    cold = await startTestWorker({ bindings: { UPSTREAM: proxy.url } });
  });
  after(async () => {
    await cold?.close();
    await proxy?.close();
    await cncf?.stop();
    if (cncf) await rm(cncf.dir, { recursive: true, force: true });
  });

  test('concurrent misses for one blob: one upstream fetch, every client gets the verified bytes, then R2 has it', async () => {
    const path = `/v2/${image.name}/blobs/${image.layer}`;
    const bodies = await Promise.all([1, 2, 3, 4].map(() => raw(cold.url, path)));
    for (const res of bodies) {
      assert.equal(res.status, 200);
      assert.equal(sha(res.body), image.layer);
    }
    assert.equal(proxy.count('GET', image.layer), 1);
    assert.equal((await cold.bucket.head(blobKey(image.name, image.layer)))?.size, image.layerSize);
    const warm = await raw(cold.url, path, { headers: { Range: 'bytes=0-4095' } });
    assert.equal(warm.status, 206);
    assert.ok(warm.body.equals(layer.subarray(0, 4096)));
    assert.equal(proxy.count('GET', image.layer), 1, 'served from R2');
  });

  test('skopeo copy through the Worker: the upstream image, digests intact, manifests and tag now in R2', async () => {
    await assertSkopeoCopies(cold.url);
    assert.equal(await (await cold.bucket.get(tagKey(image.name, 'v1')))?.text(), image.index);
    assert.ok(await cold.bucket.head(blobKey(image.name, image.manifest)));
  });

  test('a range of a blob not in R2 yet: the right bytes at once, and the whole blob lands in R2 in the background', async () => {
    const other = await makeTestImage({ name: 'Range/Model', tag: 'v1', weights: 2 * 1024 * 1024 });
    try {
      await pushLayout(other.store, other.name, 'v1', cncf.hostPort);
      const otherLayer = await readFile(path.join(other.store, 'range/model/blobs/sha256', other.layer.slice(7)));
      const res = await raw(cold.url, `/v2/${other.name}/blobs/${other.layer}`, { headers: { Range: 'bytes=100-4195' } });
      assert.equal(res.status, 206);
      assert.ok(res.body.equals(otherLayer.subarray(100, 4196)));
      for (const deadline = Date.now() + 30_000; (await cold.bucket.head(blobKey(other.name, other.layer)))?.size !== other.layerSize; ) {
        assert.ok(Date.now() < deadline, 'the whole blob never landed in R2');
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await rm(other.store, { recursive: true, force: true });
    }
  });

  for (const fault of ['corrupt', 'cut'] as const) {
    const what = fault === 'corrupt' ? 'sending bytes that do not match the digest' : 'cutting the transfer halfway';
    test(`an upstream ${what}: the client never gets a complete body, R2 stays empty`, async () => {
      const liar = await startLyingUpstream(layer, fault);
      const fooled = await startTestWorker({ bindings: { UPSTREAM: liar.url } });
      try {
        const res = await raw(fooled.url, `/v2/${image.name}/blobs/${image.layer}`).catch((error: Error) => error);
        if (!(res instanceof Error) && res.status === 200) assert.ok(res.body.length < layer.length, 'the whole bad body was delivered');
        assert.equal(await fooled.bucket.head(blobKey(image.name, image.layer)), null);
        assert.ok(liar.gets >= 1);
      } finally {
        await fooled.close();
        await liar.close();
      }
    });
  }
  test('an upstream blob larger than R2 can hold (its Content-Length past 10,000 parts of 64 MiB): a 502 spec error saying so, R2 stays empty', async () => {
    const liar = await startLyingUpstream(layer, 'huge');
    const fooled = await startTestWorker({ bindings: { UPSTREAM: liar.url } });
    try {
      const res = await raw(fooled.url, `/v2/${image.name}/blobs/${image.layer}`);
      assert.equal(res.status, 502);
      assert.equal(errorCode(res), 'UNKNOWN');
      assert.match(JSON.parse(res.body.toString()).errors[0].message, /^upstream blob too large for this registry to hold: a blob of \d+ bytes needs 10000 parts/);
      assert.equal(await fooled.bucket.head(blobKey(image.name, image.layer)), null);
    } finally {
      await fooled.close();
      await liar.close();
    }
  });
});

describe('blob misses', () => {
  test("the upstream's 404 is remembered for a while: asked again no sooner, while a failing upstream is asked every time", async () => {
    const gets = new Map<string, number>();
    const missing = Array.from({ length: 6 }, () => `sha256:${randomBytes(32).toString('hex')}`);
    const failing = Array.from({ length: 2 }, () => `sha256:${randomBytes(32).toString('hex')}`);
    const upstream = await startServer((req, res) => {
      const digest = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(req.url ?? '')?.[1];
      if (digest) gets.set(digest, (gets.get(digest) ?? 0) + 1);
      res.writeHead(digest && failing.includes(digest) ? 503 : 404, { 'Content-Type': 'application/json' });
      res.end('{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}');
    });
    const worker = await startTestWorker({ bindings: { UPSTREAM: upstream.url } });
    try {
      const ask = (digest: string, i: number) => raw(worker.url, `/v2/nobody-${i % 3}/model/blobs/${digest}`, { method: i % 2 ? 'HEAD' : 'GET' });
      for (const [i, digest] of missing.entries()) {
        assert.equal((await ask(digest, i)).status, 404);
        const first = gets.get(digest);
        assert.ok(first && first >= 1, 'the first miss asks the upstream');
        for (const res of await Promise.all([1, 2, 3].map(() => ask(digest, i)))) assert.equal(res.status, 404);
        assert.equal(gets.get(digest), first, `${digest}: later misses answered without the upstream`);
      }
      for (const [i, digest] of failing.entries()) {
        for (let n = 0; n < 3; n++) assert.ok((await ask(digest, i)).status >= 500);
        assert.ok((gets.get(digest) ?? 0) >= 3, 'a failure is not remembered');
      }
    } finally {
      await worker.close();
      await upstream.close();
    }
  });
});

describe('upstream credentials (secrets UPSTREAM_USER, UPSTREAM_PASSWORD)', () => {
  test('sent to the upstream origin only, once it challenges: a blob redirected to another origin is fetched there without them', async () => {
    const seen: { server: string; authorization?: string }[] = [];
    const storage = await startServer((req, res) => {
      seen.push({ server: 'storage', authorization: req.headers.authorization });
      res.writeHead(200, { 'Content-Length': String(layer.length) });
      res.end(layer);
    });
    const upstream = await startServer((req, res) => {
      seen.push({ server: 'upstream', authorization: req.headers.authorization });
      if (req.headers.authorization !== `Basic ${Buffer.from('puller:s3cret').toString('base64')}`) {
        res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="test"' });
        res.end();
        return;
      }
      res.writeHead(307, { Location: `${storage.url}/bucket/${image.layer.slice(7)}?sig=1` });
      res.end();
    });
    const withSecrets = await startTestWorker({ bindings: { UPSTREAM: upstream.url, UPSTREAM_USER: 'puller', UPSTREAM_PASSWORD: 's3cret' } });
    try {
      const res = await raw(withSecrets.url, `/v2/${image.name}/blobs/${image.layer}`);
      assert.equal(res.status, 200);
      assert.equal(sha(res.body), image.layer);
      // The verified client (client/transport.ts) asks anonymously first and answers the Basic challenge.
      assert.deepEqual(seen, [
        { server: 'upstream', authorization: undefined },
        { server: 'upstream', authorization: `Basic ${Buffer.from('puller:s3cret').toString('base64')}` },
        { server: 'storage', authorization: undefined },
      ]);
      assert.equal((await withSecrets.bucket.head(blobKey(image.name, image.layer)))?.size, image.layerSize);
    } finally {
      await withSecrets.close();
      await upstream.close();
      await storage.close();
    }
  });
});

/** skopeo copy --all of the image from `url` to an OCI layout: the store's index digest and blobs, each matching its digest. */
async function assertSkopeoCopies(url: string): Promise<void> {
  const out = await tempDir('worker-skopeo');
  try {
    await runTool('/usr/bin/skopeo', ['copy', '--all', '--src-tls-verify=false', `docker://${hostPort(url)}/${image.name}:v1`, `oci:${out}:v1`]);
    const index = JSON.parse(await readFile(path.join(out, 'index.json'), 'utf8'));
    assert.equal(index.manifests[0].digest, image.index);
    const copied = (await readdir(path.join(out, 'blobs/sha256'))).sort();
    const stored = (await readdir(path.join(image.store, ...image.name.split('/'), 'blobs/sha256'))).filter((f) => !f.startsWith('.')).sort();
    assert.deepEqual(copied, stored);
    for (const file of copied) assert.equal(sha(await readFile(path.join(out, 'blobs/sha256', file))), `sha256:${file}`);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

/** A small HTTP server on 127.0.0.1 (a hostile or scripted peer). */
async function startServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/**
 * An upstream that answers every blob GET with `bytes` flipped in one place, cut off halfway
 * (announcing the full length), or announced as larger than R2 can hold (`bytes` sent, then a stall).
 */
async function startLyingUpstream(bytes: Buffer, fault: 'corrupt' | 'cut' | 'huge'): Promise<{ url: string; gets: number; close(): Promise<void> }> {
  const bad = Buffer.from(bytes);
  bad[bad.length >> 1] ^= 0xff;
  let gets = 0;
  const server = await startServer((req, res) => {
    if (req.url?.includes('/blobs/')) {
      gets++;
      const claimed = fault === 'huge' ? R2_PART_LIMITS.maxParts * R2_PART_LIMITS.maxPartSize + randomInt(1, 2 ** 40) : bytes.length;
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(claimed) });
      if (req.method === 'HEAD') res.end();
      else if (fault === 'huge') res.write(bytes);
      else if (fault === 'corrupt') res.end(bad);
      else res.write(bytes.subarray(0, bytes.length >> 1), () => res.destroy());
      return;
    }
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end('{"errors":[{"code":"NOT_FOUND","message":"no"}]}');
  });
  return { ...server, get gets() { return gets; } };
}
