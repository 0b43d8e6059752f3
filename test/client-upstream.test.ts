// The pull-through against a lying upstream (findings 3 and 6 of issue 9): a Range request the
// upstream answers with a whole (wrong) body never reaches the client as complete or labelled
// immutable; an upstream that stalls in the body fails that request and everyone waiting on it;
// oversized manifests and tag lists are cut off, not read whole.
import assert from 'node:assert/strict';
import { assertRangeAnswer } from './helpers/byteranges.ts';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { request, type IncomingMessage, type ServerResponse } from 'node:http';
import { sha256Digest } from '../image/oci.ts';
import { sendBytes, startLyingServer, type LyingServer } from './helpers/lying-server.ts';
import { createPullThrough } from '../registry/upstream.ts';
import { LayoutStore } from '../registry/fs-store.ts';
import { errorCode, pseudoRandom, raw, startTestRegistry, tempDir, type TestRegistry } from './helpers/registry.ts';

const IDLE_MS = 400;

describe('pull-through from a lying upstream', () => {
  const good = pseudoRandom('upstream-blob', 200_000);
  const digest = sha256Digest(good);
  let cache: string;
  let upstream: LyingServer;
  let registry: TestRegistry;
  let behave: (req: IncomingMessage, res: ServerResponse) => void;
  const blob = `/v2/lie/up/blobs/${digest}`;
  const cached = () => existsSync(path.join(cache, 'lie/up/blobs/sha256', digest.slice(7)));

  before(async () => {
    upstream = await startLyingServer((req, res) => behave(req, res));
    cache = await tempDir('lying-cache');
    const saved = process.env.DEPOT_IDLE_TIMEOUT_MS;
    process.env.DEPOT_IDLE_TIMEOUT_MS = String(IDLE_MS);
    try {
      registry = await startTestRegistry({ store: cache, upstream: upstream.url });
    } finally {
      if (saved === undefined) delete process.env.DEPOT_IDLE_TIMEOUT_MS;
      else process.env.DEPOT_IDLE_TIMEOUT_MS = saved;
    }
  });
  after(async () => {
    await registry?.close();
    await upstream?.close();
  });

  test('a Range answered 200 with the wrong whole body: error JSON, no ETag, nothing cached', async () => {
    const wrong = Buffer.from(good);
    wrong[150_000] ^= 1;
    behave = (req, res) => res.writeHead(200, { 'Content-Length': String(wrong.length) }).end(wrong);
    const res = await raw(registry.url, blob, { headers: { Range: 'bytes=0-99' } });
    assert.equal(res.status, 502);
    assert.equal(errorCode(res), 'UNKNOWN');
    assert.equal(res.headers.etag, undefined);
    assert.doesNotMatch(String(res.headers['cache-control']), /immutable/);
    assert.ok(!cached(), 'the wrong blob was cached');
  });

  test('a blob whose fill failed its digest: small ranges are still relayed, but start no new whole-blob fetch each', async () => {
    const other = pseudoRandom('refused-blob', 300_000);
    const flipped = Buffer.from(other.map((b, i) => (i === 250_000 ? b ^ 1 : b)));
    behave = (req, res) => sendBytes(req, res, flipped);
    upstream.seen.length = 0;
    const path = `/v2/lie/refused/blobs/${sha256Digest(other)}`;
    for (let i = 0; i < 6; i++) {
      const res = await raw(registry.url, path, { headers: { Range: `bytes=${i * 100}-${i * 100 + 9}` } });
      assert.equal(res.status, 206);
      assert.ok(res.body.equals(other.subarray(i * 100, i * 100 + 10)));
      if (i === 0) await new Promise((r) => setTimeout(r, 500)); // the first background fill fails its digest
    }
    const whole = upstream.seen.filter((r) => r.method === 'GET' && r.url === path && !r.range).length;
    assert.equal(whole, 1, `whole-blob fetches of a blob that failed its digest: ${whole}`);
  });

  test('a 403 for a blob (an expired signed URL of its storage) is an upstream failure (502), not an absent blob', async () => {
    behave = (req, res) => res.writeHead(403, { 'Content-Type': 'application/xml' }).end('<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>');
    const res = await raw(registry.url, `/v2/lie/expired/blobs/${sha256Digest('expired')}`);
    assert.equal(res.status, 502);
    assert.equal(errorCode(res), 'UNKNOWN');
  });

  test('If-Range on a miss: the digest\'s entity-tag keeps the range, anything else asks for the whole blob', async () => {
    const other = pseudoRandom('if-range-blob', 20_000);
    behave = (req, res) => sendBytes(req, res, other);
    const path = `/v2/lie/ifrange/blobs/${sha256Digest(other)}`;
    const kept = await raw(registry.url, `${path.replace('ifrange', 'ifrange1')}`, { headers: { Range: 'bytes=0-9', 'If-Range': `"${sha256Digest(other)}"` } });
    assert.equal(kept.status, 206);
    const dropped = await raw(registry.url, path, { headers: { Range: 'bytes=0-9', 'If-Range': '"sha256:other"' } });
    assert.equal(dropped.status, 200);
    assert.ok(dropped.body.equals(other));
  });

  test('an upstream URL with credentials in it is refused (they would show in error messages)', async () => {
    assert.throws(() => createPullThrough(new LayoutStore(cache), 'http://puller:s3cret@127.0.0.1:1'), /must not carry credentials in its URL/);
  });

  test('a 206 for another range than asked is not relayed; the verified blob answers instead', async () => {
    behave = (req, res) => {
      if (req.headers.range) res.writeHead(206, { 'Content-Range': `bytes 1-100/${good.length}`, 'Content-Length': '100' }).end(good.subarray(1, 101));
      else sendBytes(req, res, good);
    };
    const res = await raw(registry.url, blob, { headers: { Range: 'bytes=0-99' } });
    assert.equal(res.status, 206);
    assert.ok(res.body.equals(good.subarray(0, 100)));
    assert.ok(cached(), 'verified and cached');
  });

  test('an honest 206 is relayed unlabelled (no ETag, not cacheable) and a 200 for a range is served from the verified cache', async () => {
    const other = pseudoRandom('second-blob', 50_000);
    const otherDigest = sha256Digest(other);
    behave = (req, res) => sendBytes(req, res, other);
    const relayed = await raw(registry.url, `/v2/lie/up/blobs/${otherDigest}`, { headers: { Range: 'bytes=10-19' } });
    assert.equal(relayed.status, 206);
    assert.ok(relayed.body.equals(other.subarray(10, 20)));
    assert.equal(relayed.headers.etag, undefined);
    assert.equal(relayed.headers['cache-control'], 'no-store');

    const third = pseudoRandom('third-blob', 50_000);
    behave = (req, res) => res.writeHead(200, { 'Content-Length': String(third.length) }).end(third);
    const fromCache = await raw(registry.url, `/v2/lie/up/blobs/${sha256Digest(third)}`, { headers: { Range: 'bytes=10-19' } });
    assert.equal(fromCache.status, 206);
    assert.ok(fromCache.body.equals(third.subarray(10, 20)));
    assert.equal(fromCache.headers.etag, `"${sha256Digest(third)}"`, 'verified: now it may carry the ETag');
  });

  test('several ranges: asked of the upstream one by one and framed here, unlabelled; its own multipart body is never passed on', async () => {
    const other = pseudoRandom('multi-blob', 30_000);
    const asked: string[] = [];
    behave = (req, res) => {
      asked.push(String(req.headers.range ?? ''));
      // A multipart answer whose parts say something else entirely; single ranges are honest.
      if ((req.headers.range ?? '').includes(',')) res.writeHead(206, { 'Content-Type': 'multipart/byteranges; boundary=lie', 'Content-Length': '9' }).end('--lie--\r\n');
      else sendBytes(req, res, other);
    };
    const res = await raw(registry.url, `/v2/lie/up/blobs/${sha256Digest(other)}`, { headers: { Range: 'bytes=0-9,100-109' } });
    assert.equal(res.status, 206);
    assert.equal(res.headers.etag, undefined);
    assertRangeAnswer(res, other, [[0, 9], [100, 109]], 'two ranges of an uncached blob');
    assert.ok(asked.includes('bytes=0-9') && asked.includes('bytes=100-109') && !asked.some((r) => r.includes(',')), asked.join(' | '));
  });

  test('a relayed 206 longer than its Content-Range (no Content-Length) never reaches the client as complete', async () => {
    for (const extra of [1, 1000, 5 << 20]) {
      const body = pseudoRandom(`overlong-${extra}`, 10 + extra);
      behave = (req, res) => {
        if (!req.headers.range) return sendBytes(req, res, good);
        res.writeHead(206, { 'Content-Range': `bytes 0-9/${good.length}` }); // chunked
        res.end(body);
      };
      const outcome = await raw(registry.url, blob, { headers: { Range: 'bytes=0-9' } }).then((r) => r, (e: Error) => e);
      assert.ok(outcome instanceof Error || (outcome.status === 206 && outcome.body.length <= 10) || outcome.status !== 206, `${extra} extra: ${outcome instanceof Error ? outcome.message : `${outcome.status}, ${outcome.body.length} bytes`}`);
    }
  });

  test('an upstream that stalls in the body fails the request and every request waiting on it', { timeout: 30_000 }, async () => {
    const stalled = pseudoRandom('stalled', 100_000);
    behave = (req, res) => {
      res.writeHead(200, { 'Content-Length': String(stalled.length) });
      res.write(stalled.subarray(0, 1000)); // ... and nothing more, ever
    };
    const path = `/v2/lie/up/blobs/${sha256Digest(stalled)}`;
    const outcomes = await Promise.all([0, 1, 2].map(() => raw(registry.url, path).then((r) => `status ${r.status}, ${r.body.length} bytes`, (e: Error) => `failed: ${e.message}`)));
    for (const outcome of outcomes) assert.doesNotMatch(outcome, /status 200, 100000 bytes/, outcome);
    assert.ok(!existsSync(path.replace(/.*sha256:/, `${cache}/lie/up/blobs/sha256/`)));
  });

  test('a manifest or tag list larger than allowed is cut off with a 502, not read whole', async () => {
    const huge = Buffer.alloc(6 * 1024 * 1024, 0x20);
    let sent = 0;
    behave = (req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }); // no Content-Length: only counting stops it
      const push = () => {
        while (sent < 64 * 1024 * 1024 && res.write(huge)) sent += huge.length;
        if (sent < 64 * 1024 * 1024) res.once('drain', push);
        else res.end();
      };
      push();
    };
    for (const route of ['/v2/lie/up/manifests/latest', '/v2/lie/up/tags/list']) {
      sent = 0;
      const res = await raw(registry.url, route);
      assert.equal(res.status, 502, route);
      assert.equal(errorCode(res), 'UNKNOWN');
      assert.ok(sent < 32 * 1024 * 1024, `${route}: the upstream got to send ${sent} bytes`);
    }
  });
});

describe('pull-through: no client waits on another client or on a trickling upstream', () => {
  const DEADLINE_MS = 1_500;
  let upstream: LyingServer;
  let registry: TestRegistry;
  let behave: (req: IncomingMessage, res: ServerResponse) => void;
  const timers = new Set<NodeJS.Timeout>();

  before(async () => {
    upstream = await startLyingServer((req, res) => behave(req, res));
    registry = await startTestRegistry({ store: await tempDir('pace-cache'), upstream: upstream.url, upstreamOptions: { deadlineMs: DEADLINE_MS } });
  });
  after(async () => {
    for (const t of timers) clearInterval(t);
    await registry?.close();
    await upstream?.close();
  });

  /** GET `path` without reading the body until `read` is called: the status, then the whole body. */
  function lazyGet(path: string): Promise<{ status: number; read: () => Promise<Buffer> }> {
    return new Promise((resolve, reject) => {
      request(`${registry.url}${path}`, (res) => {
        res.pause();
        resolve({ status: res.statusCode!, read: () => new Promise((done, fail) => {
          const parts: Buffer[] = [];
          res.on('data', (d: Buffer) => parts.push(d)).on('end', () => done(Buffer.concat(parts))).on('error', fail).resume();
        }) });
      }).on('error', reject).end();
    });
  }

  test('a first client that reads nothing does not hold up the next one; it later gets the whole blob', async () => {
    for (const size of [3 << 20, 24 << 20]) {
      const bytes = pseudoRandom(`pace-${size}`, size);
      behave = (req, res) => sendBytes(req, res, bytes);
      const path = `/v2/pace/model/blobs/${sha256Digest(bytes)}`;
      const first = await lazyGet(path);
      assert.equal(first.status, 200);
      const second = await raw(registry.url, path);
      assert.equal(second.status, 200, `${size}: the second client`);
      assert.ok(second.body.equals(bytes), `${size}: the second client's bytes`);
      assert.ok((await first.read()).equals(bytes), `${size}: the first client, reading late, gets the whole blob`);
    }
  });

  test('a second client of a fill that runs past the deadline gets the blob straight from the upstream, checked as it passes', async () => {
    const trickle = (bytes: Buffer) => (req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(200, { 'Content-Length': String(bytes.length) });
      let at = 0;
      const t = setInterval(() => (at >= bytes.length ? (clearInterval(t), timers.delete(t), res.end()) : res.write(bytes.subarray(at, (at += bytes.length / 20)))), DEADLINE_MS / 8);
      timers.add(t);
      res.on('close', () => (clearInterval(t), timers.delete(t)));
    };
    const bytes = pseudoRandom('slow-fill', 400_000);
    const path = `/v2/pace/slow/blobs/${sha256Digest(bytes)}`;
    behave = trickle(bytes);
    upstream.seen.length = 0;
    const [first, second] = await Promise.all([raw(registry.url, path), new Promise((r) => setTimeout(r, 100)).then(() => raw(registry.url, path))]);
    assert.equal(first.status, 200);
    assert.ok(first.body.equals(bytes));
    assert.equal(second.status, 200, 'not a 502 after the deadline');
    assert.ok(second.body.equals(bytes), 'the second client, streamed past the running fill');
    assert.equal(upstream.seen.filter((r) => r.method === 'GET' && r.url.includes('/blobs/')).length, 2);
    // The same with wrong bytes: the second client's transfer is cut, never complete.
    const wrong = Buffer.from(bytes.map((b, i) => (i === 1000 ? b ^ 1 : b)));
    const path2 = `/v2/pace/slow2/blobs/${sha256Digest(bytes)}`;
    behave = trickle(wrong);
    const results = await Promise.all([raw(registry.url, path2), new Promise((r) => setTimeout(r, 100)).then(() => raw(registry.url, path2))].map((p) => p.then((r) => r, (e: Error) => e)));
    for (const r of results) assert.ok(r instanceof Error || r.status !== 200 || r.body.length < bytes.length, 'a wrong blob never reaches a client whole');
  });

  test('the deadline is one per request: slow 503s are not retried past it, redirect hops do not renew it', async () => {
    const SLOW_MS = DEADLINE_MS * 0.6; // one answer fits the deadline, two do not
    const later = (res: ServerResponse, answer: () => void) => {
      const t = setTimeout(() => (timers.delete(t), answer()), SLOW_MS);
      timers.add(t);
      res.on('close', () => (clearTimeout(t), timers.delete(t)));
    };
    for (const [route, answer] of [
      ['/v2/pace/slow503/manifests/latest', (res: ServerResponse) => res.writeHead(503, { 'Content-Type': 'application/json' }).end('{"errors":[{"code":"UNAVAILABLE","message":"busy"}]}')],
      ['/v2/pace/hops/manifests/latest', (res: ServerResponse, req: IncomingMessage) => res.writeHead(302, { Location: `${req.url}x` }).end()],
    ] as const) {
      behave = (req, res) => later(res, () => answer(res, req));
      upstream.seen.length = 0;
      const answered = await raw(registry.url, route);
      assert.equal(answered.status, 502, route);
      assert.equal(errorCode(answered), 'UNKNOWN');
      // Without one deadline: 3 attempts of the 503, or 6 hops until "more than 5 redirects".
      const asked = upstream.seen.filter((s) => s.url.startsWith(route.replace('/latest', ''))).length;
      assert.ok(asked >= 1 && asked <= Math.ceil(DEADLINE_MS / SLOW_MS), `${route}: the upstream was asked ${asked} times within one deadline`);
    }
  });

  test('an upstream that trickles a manifest or tag list forever: every waiter gets a 502 in spec JSON by the deadline', async () => {
    behave = (req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json', 'Content-Length': '100000' });
      const t = setInterval(() => res.write(' '), 100); // never idle long enough for the idle timeout
      timers.add(t);
      res.on('close', () => (clearInterval(t), timers.delete(t)));
    };
    for (const route of ['/v2/pace/model/manifests/latest', '/v2/pace/model/tags/list']) {
      const started = Date.now();
      const answers = await Promise.all([0, 1, 2].map(() => raw(registry.url, route).then((r) => r, (e: Error) => e)));
      const took = Date.now() - started;
      for (const a of answers) {
        assert.ok(!(a instanceof Error) && a.status === 502, `${route}: ${a instanceof Error ? a.message : a.status}`);
        assert.equal(errorCode(a), 'UNKNOWN');
      }
      assert.ok(took < 20 * DEADLINE_MS, `${route}: answered after ${took} ms`);
    }
    const deadline = Date.now() + 10_000;
    while (timers.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(timers.size, 0, 'no upstream fetch outlives its deadline');
  });
});
