// Push against lying registries (findings 1 and 4 of issue 9): credentials never leave the
// registry's origin (upload Locations and redirects to another host get none), and a registry
// that answers 201 but stores nothing, or stores something else, fails the push before the tag.
// Then the streaming upload against the CNCF registry with a cut PATCH.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parsePushTarget, Pusher } from '../client/push.ts';
import { RegistryClient } from '../client/remote.ts';
import { ImageLayout } from '../image/layout.ts';
import { sha256Digest, type ImageIndex, type ImageManifest } from '../image/oci.ts';
import { sendBytes, startLyingServer, type LyingServer } from './helpers/lying-server.ts';
import { startRecordingProxy } from './helpers/proxy.ts';
import { ROOT } from './helpers/cli.ts';
import { tempDir } from './helpers/models.ts';
import { makeTestImage, pseudoRandom, startCncfRegistry, tool, type CncfRegistry, type TestImage } from './helpers/registry.ts';

tool('/usr/bin/docker-registry');
const BASIC = `Basic ${Buffer.from('pusher:s3cret').toString('base64')}`;

/** Answers 401 + a Basic challenge until the request carries the credentials. */
function challenged(req: IncomingMessage, res: ServerResponse): boolean {
  if (req.headers.authorization === BASIC) return false;
  res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="lying"', 'Content-Type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED","message":"login"}]}');
  return true;
}

async function connect(registry: string): Promise<Pusher> {
  const saved = { ...process.env };
  Object.assign(process.env, { DEPOT_REGISTRY_USERNAME: 'pusher', DEPOT_REGISTRY_PASSWORD: 's3cret', DEPOT_RETRY_DELAY_MS: '1' });
  try {
    return await Pusher.connect(parsePushTarget(registry), { insecure: true });
  } finally {
    process.env = saved;
  }
}

describe('push trusts no registry', () => {
  let foreign: LyingServer;
  let registry: LyingServer;
  let image: TestImage;
  /** What the lying registry does with a request it has authenticated. */
  let behave: (req: IncomingMessage, res: ServerResponse) => void;

  before(async () => {
    image = await makeTestImage({ name: 'Lie/Push', tag: 'latest', weights: 64 * 1024 });
    foreign = await startLyingServer((req, res) => {
      res.writeHead(req.method === 'PUT' ? 201 : 202, { Location: req.url!, 'Docker-Content-Digest': new URL(req.url!, 'http://x').searchParams.get('digest') ?? '' }).end();
    });
    registry = await startLyingServer((req, res) => {
      if (!challenged(req, res)) behave(req, res);
    });
  });
  after(async () => {
    await foreign?.close();
    await registry?.close();
  });

  test('an absolute upload Location on another origin gets no credentials (and the empty registry is caught)', async () => {
    behave = (req, res) => {
      if (req.method === 'POST') res.writeHead(202, { Location: `${foreign.url}/upload/session-1` }).end();
      else res.writeHead(404).end();
    };
    const pusher = await connect(registry.hostPort);
    await assert.rejects(pusher.uploadBlob('lie/push', [Buffer.from('weights')]), /accepted the blob but does not have it/);
    assert.deepEqual(foreign.seen.filter((s) => s.url.startsWith('/upload/')).map((s) => s.method), ['PATCH', 'PUT', 'DELETE']);
    assert.ok(foreign.seen.every((s) => s.authorization === undefined), `credentials sent to ${foreign.url}: ${JSON.stringify(foreign.seen)}`);
    assert.ok(registry.seen.some((s) => s.method === 'POST' && s.authorization === BASIC), 'the registry itself got them');
  });

  test('a redirect to another origin loses the credentials; the same origin keeps them', async () => {
    const digest = sha256Digest('x');
    behave = (req, res) => {
      if (req.url!.includes('/manifests/')) res.writeHead(307, { Location: `${foreign.url}/elsewhere${req.url}` }).end();
      else res.writeHead(307, { Location: req.url!.replace('/blobs/', '/manifests/') }).end();
    };
    const client = new RegistryClient(registry.hostPort, { insecure: true, credentials: { username: 'pusher', password: 's3cret' } });
    foreign.seen.length = 0;
    registry.seen.length = 0;
    await assert.rejects(async () => new Response(await client.openBlob('lie/push', { mediaType: 'x', digest, size: 1 })).arrayBuffer(), /got 0 bytes/);
    assert.ok(registry.seen.filter((s) => s.url.includes('/manifests/')).every((s) => s.authorization === BASIC), 'same-origin hop kept them');
    assert.ok(foreign.seen.length > 0 && foreign.seen.every((s) => s.authorization === undefined), JSON.stringify(foreign.seen));
  });

  test('a 401 from any other origin (upload Location, redirect) gets no credentials and fails, whatever it challenges', async () => {
    let challenge = '';
    const hostile = await startLyingServer((req, res) => {
      if (req.url!.startsWith('/token')) res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"token":"hostile"}');
      else res.writeHead(401, { 'WWW-Authenticate': challenge }).end();
    });
    try {
      const challenges = [`Bearer realm="${hostile.url}/token",service="foreign"`, `Bearer realm="${registry.url}/token",service="r"`, 'Basic realm="foreign"'];
      for (const how of ['location', 'redirect'] as const) {
        for (const c of challenges) {
          challenge = c;
          behave = (req, res) => {
            if (req.url!.startsWith('/token')) res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"token":"registry"}');
            else if (how === 'location' && req.method === 'POST') res.writeHead(202, { Location: `${hostile.url}/upload/1` }).end();
            else res.writeHead(307, { Location: `${hostile.url}${req.url}` }).end();
          };
          hostile.seen.length = 0;
          registry.seen.length = 0;
          const pusher = await connect(registry.hostPort);
          const work = how === 'location' ? pusher.uploadBlob('lie/push', [Buffer.from('weights')]) : pusher.client.manifest('lie/push', 'latest');
          await assert.rejects(work, /not the registry, asked for credentials \(none sent\)/, `${how} / ${c}`);
          assert.ok(hostile.seen.length > 0, `${how} / ${c}: the hostile host was reached`);
          assert.ok(hostile.seen.every((s) => s.authorization === undefined), `${how} / ${c}: credentials sent: ${JSON.stringify(hostile.seen)}`);
          assert.ok(registry.seen.every((s) => !s.url.startsWith('/token') && !s.authorization?.startsWith('Bearer')), `${how} / ${c}: a token was fetched or sent`);
        }
      }
    } finally {
      await hostile.close();
    }
  });

  test('a registry that answers 201 and stores nothing: a clear error and no tag', async () => {
    behave = (req, res) => {
      const url = new URL(req.url!, 'http://x');
      if (req.method === 'POST') res.writeHead(202, { Location: '/v2/lie/push/blobs/uploads/s' }).end();
      else if (req.method === 'PATCH') res.writeHead(202, { Location: '/v2/lie/push/blobs/uploads/s' }).end();
      else if (req.method === 'PUT') res.writeHead(201, { 'Docker-Content-Digest': url.searchParams.get('digest') ?? '' }).end();
      else res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"errors":[{"code":"BLOB_UNKNOWN","message":"unknown"}]}');
    };
    registry.seen.length = 0;
    const pusher = await connect(registry.hostPort);
    await assert.rejects(pusher.push(new ImageLayout(image.store, image.name), image.tag), /accepted the blob but does not have it when asked/);
    assert.equal(registry.seen.filter((s) => s.method === 'PUT' && s.url.includes('/manifests/')).length, 0, 'no manifest, no tag');
  });

  test('a blob HEAD 200 that leaves out its size or its digest proves nothing: the blob is read back, and a registry serving nothing or other bytes fails the push', async () => {
    const layout = new ImageLayout(image.store, image.name);
    const blobs = new Map<string, Buffer>();
    const index = await layout.readJson<ImageIndex>((await layout.resolveTag(image.tag))!.digest);
    for (const m of index.manifests) {
      const manifest = await layout.readJson<ImageManifest>(m.digest);
      for (const { digest } of [manifest.config, ...manifest.layers]) blobs.set(digest, await layout.readBlob(digest));
    }
    const serves = {
      nothing: () => undefined,
      'flipped byte': (b: Buffer) => Buffer.from(b.map((x, i) => (i === b.length >> 1 ? x ^ 1 : x))),
      truncated: (b: Buffer) => b.subarray(0, b.length - 1),
      honest: (b: Buffer) => b,
    };
    // What the HEAD states besides its 200: nothing, the digest only, the size only, both (issue 9:
    // a registry that keeps each blob's size and digest but throws the bytes away); the GET here
    // ignores Range, so a read back is always whole and verified.
    for (const headers of [{}, { 'Docker-Content-Digest': 'right' }, { 'Content-Length': 'right' }, { 'Content-Length': 'right', 'Docker-Content-Digest': 'right' }]) {
      for (const [lie, serve] of Object.entries(serves)) {
        behave = (req, res) => {
          const digest = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(req.url!)?.[1];
          const bytes = digest && blobs.has(digest) ? serve(blobs.get(digest)!) : undefined;
          const stated: Record<string, string> = 'Content-Length' in headers ? { 'Content-Length': String(blobs.get(digest!)?.length) } : { 'Transfer-Encoding': 'chunked' };
          if ('Docker-Content-Digest' in headers) stated['Docker-Content-Digest'] = digest!;
          if (req.method === 'HEAD' && digest) res.writeHead(200, stated).end();
          else if (req.method === 'GET' && bytes) res.writeHead(200).end(bytes);
          else if (req.method === 'POST') res.writeHead(202, { Location: '/v2/lie/push/blobs/uploads/s' }).end();
          else if (req.method === 'PATCH') res.writeHead(202, { Location: '/v2/lie/push/blobs/uploads/s' }).end();
          else if (req.method === 'PUT') res.writeHead(201).end();
          else res.writeHead(404).end();
        };
        registry.seen.length = 0;
        const pusher = await connect(registry.hostPort);
        const pushed = pusher.push(layout, image.tag);
        if (lie === 'honest') {
          await assert.rejects(pushed, /accepted the manifest but serves nothing/, 'the honest blobs pass as present; only the (unserved) manifest fails');
          assert.equal(registry.seen.filter((s) => s.method === 'POST').length, 0, 'nothing uploaded');
        } else {
          await assert.rejects(pushed, lie === 'nothing' ? /accepted the blob but does not have it/ : /read back: .*got \d+ bytes with digest/, `${lie} ${JSON.stringify(headers)}`);
          assert.equal(registry.seen.filter((s) => s.method === 'PUT' && s.url.includes('/manifests/')).length, 0, `${lie}: no manifest, no tag`);
        }
      }
    }
  });

  test('a manifest PUT answered with another Docker-Content-Digest, or not served back, or a blob whose last byte is not its own: refused before the tag', async () => {
    const layout = new ImageLayout(image.store, image.name);
    const configBytes = await layout.readBlob(image.config);
    const layerBytes = await layout.readBlob(image.layer);
    const configSize = configBytes.length;
    let lastByteLie = false;
    for (const [lie, message] of [
      ['digest', /stored the manifest as sha256:.* not sha256:/],
      ['nothing', /accepted the manifest but serves nothing/],
      ['last byte', /its last byte is \d+, the blob's is \d+: the registry does not hold this blob/],
    ] as const) {
      lastByteLie = lie === 'last byte';
      behave = (req, res) => {
        if (req.method === 'HEAD' && req.url!.includes('/blobs/')) {
          // every blob "present", with the right size and digest, so the push goes on to the manifests
          res.writeHead(200, { 'Content-Length': String(req.url!.includes(image.layer) ? image.layerSize : configSize), 'Docker-Content-Digest': req.url!.split('/blobs/')[1] }).end();
          return;
        }
        if (req.method === 'GET' && req.url!.includes('/blobs/')) {
          const bytes = req.url!.includes(image.layer) ? layerBytes : configBytes; // and its last byte served
          const last = bytes[bytes.length - 1] ^ (lastByteLie ? 0xff : 0); // (a store that kept sizes and digests only)
          res.writeHead(206, { 'Content-Range': `bytes ${bytes.length - 1}-${bytes.length - 1}/${bytes.length}` }).end(Buffer.from([last]));
          return;
        }
        if (req.method === 'PUT') res.writeHead(201, { 'Docker-Content-Digest': lie === 'digest' ? sha256Digest('lie') : '' }).end();
        else res.writeHead(404).end();
      };
      registry.seen.length = 0;
      const pusher = await connect(registry.hostPort);
      await assert.rejects(pusher.push(layout, image.tag), message);
      assert.equal(registry.seen.filter((s) => s.method === 'PUT' && s.url.endsWith(`/manifests/${image.tag}`)).length, 0, 'no tag');
    }
  });
});

describe('streaming upload resumes where the registry says it stands', () => {
  test('a PATCH cut halfway is resumed from the Range the session reports, not restarted', async () => {
    const bytes = pseudoRandom('resume', 3 * 1024 * 1024 + 5);
    let stored = Buffer.alloc(0);
    let cut = false;
    const ranges: string[] = [];
    const registry = await startLyingServer((req, res, body) => {
      const url = new URL(req.url!, 'http://x');
      if (req.method === 'POST') return res.writeHead(202, { Location: '/v2/r/s/blobs/uploads/1', Range: '0-0' }).end();
      if (req.method === 'PATCH') {
        ranges.push(String(req.headers['content-range']));
        if (!cut && stored.length > 0) {
          cut = true; // keep half of this window, then drop the connection as a flaky network does
          stored = Buffer.concat([stored, body.subarray(0, body.length >> 1)]);
          return res.destroy();
        }
        stored = Buffer.concat([stored, body]);
        return res.writeHead(202, { Location: '/v2/r/s/blobs/uploads/1', Range: `0-${stored.length - 1}` }).end();
      }
      if (req.method === 'GET' && url.pathname.endsWith('/uploads/1')) return res.writeHead(204, { Location: '/v2/r/s/blobs/uploads/1', Range: `0-${stored.length - 1}` }).end();
      if (req.method === 'PUT') {
        const ok = url.searchParams.get('digest') === sha256Digest(stored);
        return res.writeHead(ok ? 201 : 400, { 'Docker-Content-Digest': sha256Digest(stored) }).end();
      }
      if (req.method === 'HEAD' && url.pathname === `/v2/r/s/blobs/${sha256Digest(stored)}`) return res.writeHead(200, { 'Content-Length': String(stored.length), 'Docker-Content-Digest': sha256Digest(stored) }).end();
      if (req.method === 'GET' && url.pathname === `/v2/r/s/blobs/${sha256Digest(stored)}`) return sendBytes(req, res, stored);
      res.writeHead(404).end();
    });
    try {
      const saved = process.env.DEPOT_RETRY_DELAY_MS;
      process.env.DEPOT_RETRY_DELAY_MS = '1';
      const pusher = await Pusher.connect(parsePushTarget(registry.hostPort), { insecure: true, chunkSize: 1024 * 1024 });
      const pushed = await pusher.uploadBlob('r/s', (async function* () {
        for (let i = 0; i < bytes.length; i += 100_000) yield bytes.subarray(i, i + 100_000);
      })()).finally(() => (saved === undefined ? delete process.env.DEPOT_RETRY_DELAY_MS : (process.env.DEPOT_RETRY_DELAY_MS = saved)));
      assert.deepEqual(pushed, { digest: sha256Digest(bytes), size: bytes.length });
      assert.ok(stored.equals(bytes), 'the registry holds exactly the blob');
      const half = 1024 * 1024 + (1024 * 1024 >> 1);
      assert.deepEqual(ranges.slice(0, 3), [`0-${1024 * 1024 - 1}`, `${1024 * 1024}-${2 * 1024 * 1024 - 1}`, `${half}-${2 * 1024 * 1024 - 1}`], 'resumed mid-window');
      assert.ok(!registry.seen.some((s) => s.method === 'POST' && registry.seen.indexOf(s) > 0), 'no new session');
    } finally {
      await registry.close();
    }
  });
});

describe('streaming upload to the CNCF registry', () => {
  let cncf: CncfRegistry;
  before(async () => {
    cncf = await startCncfRegistry();
  });
  after(() => cncf?.stop());

  /** Upload `bytes` through a proxy that cuts the first PATCH after `cutAfter` body bytes; returns what the registry serves back. */
  async function uploadCut(name: string, bytes: Buffer, cutAfter: number) {
    const proxy = await startRecordingProxy(cncf.url);
    try {
      const chunks = async function* () {
        for (let i = 0; i < bytes.length; i += 300_000) yield bytes.subarray(i, i + 300_000);
      };
      proxy.faults.push({ method: 'PATCH', cutAfter, times: 1 });
      const saved = { ...process.env };
      process.env.DEPOT_RETRY_DELAY_MS = '1';
      let pushed;
      try {
        const pusher = await Pusher.connect(parsePushTarget(proxy.hostPort), { insecure: true, chunkSize: 1024 * 1024 });
        pushed = await pusher.uploadBlob(name, chunks(), { reopen: chunks });
      } finally {
        process.env = saved;
      }
      const back = Buffer.from(await (await fetch(`${cncf.url}/v2/${name}/blobs/${pushed.digest}`)).arrayBuffer());
      return { pushed, back, patches: proxy.count('PATCH'), posts: proxy.count('POST') };
    } finally {
      await proxy.close();
    }
  }

  test('a blob of unknown size from an async iterable, with a cut PATCH, arrives whole', async () => {
    const bytes = pseudoRandom('stream', 5 * 1024 * 1024 + 17);
    const { pushed, back, patches } = await uploadCut('stream/blob', bytes, 256 * 1024);
    assert.deepEqual(pushed, { digest: sha256Digest(bytes), size: bytes.length });
    assert.ok(patches >= 7, `PATCHed in 1 MiB windows and again after the cut (${patches})`);
    assert.equal(sha256Digest(back), sha256Digest(bytes));
  });

  test('a registry that limits body size (413 above 1 MiB, like nginx) gets halved PATCHes, said once; below the floor one clear line', async () => {
    const bytes = pseudoRandom('limit413', 5 * 1024 * 1024 + 11);
    for (const [limit, expect] of [[1024 * 1024, 'pushed'], [100 * 1024, 'refused']] as const) {
      const proxy = await startRecordingProxy(cncf.url);
      proxy.faults.push({ method: 'PATCH', largerThan: limit, status: 413, times: Infinity });
      const notices: string[] = [];
      try {
        const pusher = await Pusher.connect(parsePushTarget(proxy.hostPort), { insecure: true, chunkSize: 4 * 1024 * 1024, onNotice: (line) => notices.push(line) });
        const pushed = pusher.uploadBlob(`limit/b${limit}`, [bytes.subarray(0, 3_000_000), bytes.subarray(3_000_000)]);
        if (expect === 'refused') {
          await assert.rejects(pushed, /refuses PATCH bodies of 262144 bytes \(413 Payload Too Large\), even at the 256 KiB floor/);
          continue;
        }
        assert.deepEqual(await pushed, { digest: sha256Digest(bytes), size: bytes.length });
        const back = Buffer.from(await (await fetch(`${cncf.url}/v2/limit/b${limit}/blobs/${sha256Digest(bytes)}`)).arrayBuffer());
        assert.equal(sha256Digest(back), sha256Digest(bytes));
        assert.deepEqual(notices, [`${proxy.hostPort} limits request bodies (413 Payload Too Large for larger PATCHes): sending 1048576-byte PATCHes (--upload-chunk 1048576 or DEPOT_UPLOAD_CHUNK_BYTES=1048576 sends them so from the start)`]);
        assert.equal(proxy.count('PUT'), 1, 'no whole-layer PUT with the bytes: the chunks went through');
        assert.equal(proxy.count('PATCH'), 2 + 6, 'halved twice (4 MiB, 2 MiB refused), then 1 MiB PATCHes, the size kept for the next window');
      } finally {
        await proxy.close();
      }
    }
  });

  test('a front end that answers 413 unread and resets the connection (nginx): PATCHes halved, the push exits promptly (no idle timer left armed)', async () => {
    const proxy = await startRecordingProxy(cncf.url);
    proxy.faults.push({ method: 'PATCH', largerThan: 1024 * 1024, status: 413, unread: true, times: Infinity });
    const script = path.join(tempDir('depot-413-exit-'), 'push.mts');
    writeFileSync(
      script,
      `import { parsePushTarget, Pusher } from ${JSON.stringify(path.join(ROOT, 'client/push.ts'))};
const pusher = await Pusher.connect(parsePushTarget(process.argv[2]), { insecure: true, chunkSize: 4 << 20 });
console.log((await pusher.uploadBlob('exit/b413', [Buffer.alloc(5 << 20, 7)])).digest);\n`,
    );
    try {
      // The idle timeout is 10 minutes: a timer left armed keeps the child alive that long.
      const child = spawn(process.execPath, ['--import', 'tsx', script, proxy.hostPort], { cwd: ROOT, env: { ...process.env, DEPOT_IDLE_TIMEOUT_MS: '600000' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
      const exited = new Promise((resolve) => child.once('exit', resolve));
      const code = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve('still running after 60 s'), 60_000))]);
      child.kill('SIGKILL');
      assert.equal(code, 0, output);
      assert.match(output, new RegExp(sha256Digest(Buffer.alloc(5 << 20, 7))));
      assert.ok(proxy.count('PATCH') > 2, 'a 413 was met');
    } finally {
      await proxy.close();
    }
  });

  /**
   * An upload to a registry that never answers `stalled` (and answers POST after `postAfterMs`,
   * none: never), aborted once `stalled` was sent: the methods the registry saw, and how long the
   * upload took to reject with the abort's reason after it.
   */
  async function abortWhile(stalled: 'POST' | 'PATCH', postAfterMs?: number): Promise<{ methods: string[]; ms: number }> {
    const hostile = await startLyingServer((req, res) => {
      if (req.method === 'POST') {
        if (postAfterMs !== undefined) setTimeout(() => res.writeHead(202, { Location: '/v2/abort/blob/blobs/uploads/s1' }).end(), postAfterMs);
        return;
      }
      if (req.method === 'PATCH') return; // never answered: the idle timeout (30 s) is far
      if (req.method === 'DELETE') return void res.writeHead(204).end();
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
    });
    try {
      const pusher = await Pusher.connect(parsePushTarget(hostile.hostPort), { insecure: true, chunkSize: 256 * 1024 });
      const controller = new AbortController();
      const reason = new Error('interrupted');
      const pushed = pusher.uploadBlob('abort/blob', [pseudoRandom('abort', 600_000)], { signal: controller.signal });
      pushed.catch(() => {});
      for (const deadline = Date.now() + 30_000; !hostile.seen.some((r) => r.method === stalled); await new Promise((r) => setTimeout(r, 5))) {
        assert.ok(Date.now() < deadline, `the ${stalled} was sent`);
      }
      const aborted = Date.now();
      controller.abort(reason);
      await assert.rejects(pushed, (error) => error === reason);
      return { methods: hostile.seen.map((r) => r.method), ms: Date.now() - aborted };
    } finally {
      await hostile.close();
    }
  }

  test('an abort stops a PATCH in flight: rejects with its reason, no PUT, the session DELETEd', async () => {
    const { methods } = await abortWhile('PATCH', 0);
    assert.equal(methods.filter((m) => m === 'PATCH').length, 1, methods.join());
    assert.ok(!methods.includes('PUT'), methods.join());
    assert.ok(methods.includes('DELETE'), methods.join());
  });

  test('an abort while the POST that opens the session is answered: the session it opened is DELETEd; a POST never answered is given up after the grace', async () => {
    for (const postAfterMs of [300, 1000, undefined]) {
      const { methods, ms } = await abortWhile('POST', postAfterMs);
      assert.ok(!methods.includes('PATCH') && !methods.includes('PUT'), `${postAfterMs}: ${methods.join()}`);
      assert.equal(methods.includes('DELETE'), postAfterMs !== undefined, `${postAfterMs}: ${methods.join()}`);
      if (postAfterMs === undefined) assert.ok(ms < 10_000, 'a POST never answered is not waited for past the grace');
    }
  });

  test("a first PATCH cut after 0 or 1 body bytes (the registry's Range says 0-0 for both) still arrives whole", async () => {
    for (const cutAfter of [0, 1]) {
      const bytes = pseudoRandom(`first${cutAfter}`, 2 * 1024 * 1024 + 3);
      const { pushed, back, posts } = await uploadCut(`cut/first${cutAfter}`, bytes, cutAfter);
      // 0 stored: resent from byte 0 in the same session; 1 stored: the registry's 416 restarts it.
      if (cutAfter === 0) assert.equal(posts, 1, 'nothing stored: the same session goes on');
      assert.deepEqual(pushed, { digest: sha256Digest(bytes), size: bytes.length }, `cut after ${cutAfter}`);
      assert.equal(sha256Digest(back), sha256Digest(bytes), `cut after ${cutAfter}: served back whole`);
    }
  });
});
