// The pull-through of `serve --upstream` and of the Worker against a small lying upstream, one
// rule for both: unverified bytes reach a client only with a Content-Length it checks, and a
// bad, cut, endless or encoded answer ends as a cut transfer or a 502, never as a clean body;
// nothing unverified carries Docker-Content-Digest or ETag, nothing bad is cached, a fill reads
// no more than the blob's size, and only manifest media types are taken from the upstream.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { request, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { sha256Digest } from '../image/oci.ts';
import { blobKey } from '../registry/r2-store.ts';
import { startLyingServer, type LyingServer } from './helpers/lying-server.ts';
import { eventually, pseudoRandom, startTestRegistry, tempDir, type TestRegistry } from './helpers/registry.ts';
import { startTestWorker, type TestWorker } from './helpers/worker.ts';

const blob = pseudoRandom('lies', 300 * 1024 + 17);
const digest = sha256Digest(blob);
const flipped = Buffer.from(blob);
flipped[0] ^= 0xff;

/** How the upstream answers a blob GET, by the repository name's second segment (`lies/<mode>[/<fresh name>]`). */
type Mode = 'honest' | 'fresh' | 'ignoreslow' | 'stallrange' | 'chunked' | 'wrongchunked' | 'cutchunked' | 'endless' | 'gzip' | 'short206' | 'shortmulti' | 'endlessmulti' | 'corrupt' | 'bigtotal';
const MODES: Mode[] = ['honest', 'chunked', 'wrongchunked', 'cutchunked', 'endless', 'gzip', 'short206', 'shortmulti', 'endlessmulti', 'corrupt'];
const LYING = new Set<Mode>(['wrongchunked', 'cutchunked', 'endless', 'gzip', 'corrupt']);
/** Bytes an endless answer wrote before its connection closed, per mode (the fill's bound shows here). */
const endlessSent = new Map<string, number>();
/** Blob GETs the upstream received without a Range header, per mode. */
const wholeGets = new Map<string, number>();
/** Ranged GETs of mode stallrange: whether the upstream has seen each one's connection close. */
const stalledRanges: { closed: boolean }[] = [];

function endless(res: ServerResponse, mode: string, status: number, headers: Record<string, string> = {}): void {
  res.writeHead(status, headers);
  const junk = Buffer.alloc(64 * 1024, 0x41);
  let sent = 0;
  const go = () => {
    while (sent < 256 * 1024 * 1024) {
      sent += junk.length;
      if (!res.write(junk)) return void res.once('drain', go);
    }
    res.end();
  };
  res.on('close', () => endlessSent.set(mode, sent));
  go();
}

/** Tags of `lies/paged`: 250 valid ones served 100 a page (relative Link), and names no registry could hold. */
const PAGED_TAGS = Array.from({ length: 250 }, (_, i) => `t${String(i).padStart(3, '0')}`);
const BAD_TAGS = ['\u0000nul', '-bad', '../../../etc/passwd', '<script>alert(1)</script>', 'a b', 'x'.repeat(5000)];

function pagedTags(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url!, 'http://x');
  const last = url.searchParams.get('last');
  const rest = PAGED_TAGS.filter((t) => last === null || t > last);
  const page = rest.slice(0, 100);
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  if (rest.length > 100) headers.Link = `</v2/lies/paged/tags/list?n=100&last=${page[page.length - 1]}>; rel="next"`;
  // The last page points to another origin: never followed.
  else headers.Link = '<http://127.0.0.1:1/v2/lies/paged/tags/list?last=zzz>; rel="next"';
  res.writeHead(200, headers).end(JSON.stringify({ name: 'lies/paged', tags: last === null ? [...page, ...BAD_TAGS, page[0]] : page }));
}

function lie(req: IncomingMessage, res: ServerResponse): void {
  if ((req.url ?? '').startsWith('/v2/lies/paged/tags/list')) return pagedTags(req, res);
  const m = /^\/v2\/lies\/([a-z0-9]+)(?:\/[a-z]+)?\/(blobs|manifests)\/(.+)$/.exec(req.url ?? '');
  if (!m) return void res.writeHead(req.url === '/v2/' ? 200 : 404).end();
  const mode = m[1] as Mode;
  if (m[2] === 'manifests') {
    const body = JSON.stringify({ schemaVersion: 2, mediaType: 'text/html', layers: [], x: '<script>alert(1)</script>' });
    return void res.writeHead(200, { 'Content-Type': 'text/html', 'Content-Length': String(Buffer.byteLength(body)) }).end(body);
  }
  if (m[3] !== digest) return void res.writeHead(404).end();
  if (req.method === 'HEAD') return void res.writeHead(200, { 'Content-Length': String(blob.length) }).end();
  const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  const multi = (req.headers.range ?? '').includes(',');
  if (!req.headers.range) wholeGets.set(mode, (wholeGets.get(mode) ?? 0) + 1);
  const bytes = mode === 'corrupt' || mode === 'wrongchunked' ? flipped : blob;
  if (multi && mode === 'shortmulti') return void res.writeHead(206, { 'Content-Type': 'multipart/byteranges; boundary=XYZ' }).end('--XYZ\r\nContent-Ty');
  if (multi && mode === 'endlessmulti') return endless(res, mode, 206, { 'Content-Type': 'multipart/byteranges; boundary=XYZ' });
  if (mode === 'ignoreslow') {
    // Range ignored: the whole blob, in ten slices over ~3 s (longer than the test's manifest deadline).
    res.writeHead(200, { 'Content-Length': String(blob.length) });
    const slice = Math.ceil(blob.length / 10);
    let offset = 0;
    const timer = setInterval(() => (offset >= blob.length ? (clearInterval(timer), res.end()) : res.write(blob.subarray(offset, (offset += slice)))), 300);
    return void res.on('close', () => clearInterval(timer));
  }
  if (mode === 'stallrange') {
    if (!range) return; // the background fill stalls as well, unanswered
    // A 206 that sends its first KiB, then nothing: only the client leaving can end it early.
    const seen = { closed: false };
    stalledRanges.push(seen);
    req.socket.once('close', () => (seen.closed = true));
    const start = Number(range[1]);
    const end = Number(range[2]);
    res.writeHead(206, { 'Content-Range': `bytes ${start}-${end}/${blob.length}`, 'Content-Length': String(end - start + 1) });
    return void res.write(blob.subarray(start, start + 1024));
  }
  if (range && !multi) {
    const start = Number(range[1]);
    const end = range[2] ? Math.min(Number(range[2]), blob.length - 1) : blob.length - 1;
    const part = bytes.subarray(start, end + 1);
    // bigtotal: claims a blob 100 times larger, so that any range looks like a small share of it.
    const headers = { 'Content-Range': `bytes ${start}-${end}/${mode === 'bigtotal' ? blob.length * 100 : blob.length}` };
    if (mode === 'short206') return void res.writeHead(206, headers).end(part.subarray(0, part.length >> 1));
    return void res.writeHead(206, { ...headers, 'Content-Length': String(part.length) }).end(part);
  }
  if (mode === 'endless') return endless(res, mode, 200);
  if (mode === 'gzip') return void res.writeHead(200, { 'Content-Encoding': 'gzip' }).end(gzipSync(blob));
  if (mode === 'cutchunked') {
    res.writeHead(200);
    return void res.write(blob.subarray(0, blob.length >> 1), () => setTimeout(() => res.socket?.destroy(), 50));
  }
  if (mode === 'chunked' || mode === 'wrongchunked') {
    res.writeHead(200);
    let offset = 0;
    const go = () => (offset >= bytes.length ? res.end() : (res.write(bytes.subarray(offset, (offset += 32 * 1024))), setImmediate(go)));
    return void go();
  }
  res.writeHead(200, { 'Content-Length': String(bytes.length) }).end(bytes);
}

interface Answer {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
  /** The body ended as HTTP says a whole body ends (false: the transfer was cut). */
  complete: boolean;
}

/** One request, telling a whole body from a cut one. */
function fetchRaw(base: string, pathname: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path: pathname, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let settled = false;
      const done = (complete: boolean) => {
        if (settled) return;
        settled = true;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), complete });
      };
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => done(res.complete));
      res.on('error', () => done(false));
      res.on('aborted', () => done(false));
      res.on('close', () => done(res.complete));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * The rule: an error is the spec's JSON; a 200/206 states its Content-Length, and when it ended
 * whole it is exactly `expected`; without ETag it carries no Docker-Content-Digest either.
 */
function assertNoCleanLie(res: Answer, expected: Buffer, what: string): void {
  assert.equal(res.headers['x-content-type-options'], 'nosniff', what);
  if (res.status >= 400) {
    if (res.body.length > 0) assert.match(res.body.toString(), /^\{"errors":\[/, what);
    return;
  }
  assert.ok(res.status === 200 || res.status === 206, `${what}: status ${res.status}`);
  assert.ok(res.headers['content-length'] !== undefined, `${what}: a ${res.status} without Content-Length (a cut would look like an end)`);
  if (res.complete) assert.ok(res.body.equals(expected), `${what}: a complete body of ${res.body.length} bytes that is not the blob's`);
  if (res.headers.etag === undefined) assert.equal(res.headers['docker-content-digest'], undefined, `${what}: unverified bytes labelled with the digest`);
}

/** A blob of `mode`; `fresh` names a repository no earlier test has filled. */
/** A GET over HTTP/1.0 (the end of the body is the close): the raw head and body. */
function fetchHttp10(base: string, pathname: string): Promise<{ head: string; body: Buffer }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(Number(url.port), url.hostname, () => socket.write(`GET ${pathname} HTTP/1.0\r\nHost: ${url.host}\r\n\r\n`));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => {}); // a reset is a close here
    socket.on('close', () => {
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) return reject(new Error(`no response head: ${all.toString().slice(0, 200)}`));
      resolve({ head: all.subarray(0, end).toString(), body: all.subarray(end + 4) });
    });
  });
}

const blobPath = (mode: Mode, fresh = '') => `/v2/lies/${mode}${fresh && `/${fresh}`}/blobs/${digest}`;

for (const kind of ['serve', 'worker'] as const) {
  describe(`${kind}: a lying upstream`, () => {
    let liar: LyingServer;
    let registry: TestRegistry | TestWorker;
    let cache = '';
    before(() => wholeGets.clear());
    /** Temp files in the store's .tmp: one a killed serve left (its pid is gone), one of this process. */
    const leftover = `${spawnSync('true').pid}-left-by-a-killed-serve`;
    const ours = `${process.pid}-being-written`;
    const cached = async (mode: Mode) =>
      kind === 'serve' ? existsSync(path.join(cache, 'lies', mode, 'blobs/sha256', digest.slice(7))) : (await (registry as TestWorker).bucket.head(blobKey(`lies/${mode}`, digest))) !== null;

    before(async () => {
      liar = await startLyingServer(lie);
      if (kind === 'serve') {
        cache = await tempDir('lies');
        await mkdir(path.join(cache, '.tmp'));
        for (const name of [leftover, ours]) await writeFile(path.join(cache, '.tmp', name), 'partial');
        // A short manifest deadline: a fill must not be held to it (the fill has its own).
        registry = await startTestRegistry({ store: cache, upstream: liar.url, upstreamOptions: { deadlineMs: 1500 } });
      } else {
        registry = await startTestWorker({ bindings: { UPSTREAM: liar.url } });
      }
    });
    after(async () => {
      await registry?.close();
      await liar?.close();
      if (cache) await rm(cache, { recursive: true, force: true });
    });

    test('whole GET of a miss: verified and whole, or cut (never a clean lie); nothing bad cached; a fill stops at the size', async () => {
      endlessSent.clear();
      for (const mode of MODES) {
        const res = await fetchRaw(registry.url, blobPath(mode));
        assertNoCleanLie(res, blob, `${kind} ${mode}`);
        if (!LYING.has(mode)) {
          assert.equal(res.status, 200, `${kind} ${mode}`);
          assert.ok(res.complete && res.body.equals(blob), `${kind} ${mode}: the honest blob whole`);
        } else assert.ok(!(res.status === 200 && res.complete), `${kind} ${mode}: a lie delivered as a complete 200`);
        if (mode === 'gzip') assert.equal(res.status, 502, `${kind} gzip: an encoded blob answer is refused`);
      }
      const sent = await eventually(() => endlessSent.get('endless'), 'the endless upstream answer to be closed');
      assert.ok(sent < blob.length + 8 * 1024 * 1024, `${kind}: the fill read ${sent} bytes of an endless body for a ${blob.length}-byte blob`);
      for (const mode of LYING) assert.equal(await cached(mode), false, `${kind} ${mode}: cached`);
      assert.equal(await cached('chunked'), true, `${kind}: an honest chunked answer is cached`);
      if (kind === 'serve') {
        assert.equal(existsSync(path.join(cache, '.tmp', leftover)), false, 'a dead writer\'s temp file is removed');
        assert.equal(existsSync(path.join(cache, '.tmp', ours)), true, 'a live writer\'s temp file is kept');
      }
    });

    test('an HTTP/1.0 client (the close ends the body) is told the length, and a wrong chunked blob falls short of it', async () => {
      const { head, body } = await fetchHttp10(registry.url, blobPath('wrongchunked', 'httpone'));
      const length = /^content-length: (\d+)$/im.exec(head)?.[1];
      if (/^HTTP\/1\.[01] 2/.test(head)) {
        assert.equal(length, String(blob.length), `${kind}: ${head}`);
        assert.ok(body.length < blob.length, `${kind}: the whole wrong body was delivered over HTTP/1.0`);
      } else assert.match(head, /^HTTP\/1\.[01] 502/, head);
    });

    test('HEAD of a miss: the size is relayed, unlabelled', async () => {
      const res = await fetchRaw(registry.url, blobPath('short206', 'head'), {}, 'HEAD');
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-length'], String(blob.length));
      assert.equal(res.headers['docker-content-digest'], undefined);
      assert.equal(res.headers.etag, undefined);
    });

    test('range GETs of a miss: short, cut or endless relays end cut; ranges covering most of the blob join the one fill, verified', async () => {
      const small = await fetchRaw(registry.url, blobPath('short206', 'range'), { Range: 'bytes=100-1099' });
      assertNoCleanLie(small, blob.subarray(100, 1100), `${kind} short206`);
      assert.equal(small.complete, false, `${kind} short206: a short 206 passed as complete`);
      for (const mode of ['shortmulti', 'endlessmulti'] as const) {
        const res = await fetchRaw(registry.url, blobPath(mode, 'range'), { Range: 'bytes=0-99,200-299' });
        // An upstream's multipart body is never passed on: each range is asked alone and framed here.
        assert.equal(res.status, 206, `${kind} ${mode}`);
        assert.ok(res.complete && Number(res.headers['content-length']) === res.body.length, `${kind} ${mode}: whole, as long as it says`);
        assert.match(String(res.headers['content-type']), /^multipart\/byteranges; boundary=/);
        assert.ok(res.body.includes(blob.subarray(0, 100)) && res.body.includes(blob.subarray(200, 300)), `${kind} ${mode}`);
        assert.ok(res.body.length < 1000, `${kind} ${mode}: only the two ranges`);
      }
      // Several ranges covering most of the blob, and a range whose Content-Range states another
      // size: neither is relayed; each is served from the verified fill (or a 502 for a bad blob).
      const most = await fetchRaw(registry.url, blobPath('corrupt', 'most'), { Range: 'bytes=0-99,101-' });
      assert.equal(most.status, 502, `${kind}: most of a corrupt blob, in two ranges`);
      const honestMost = await fetchRaw(registry.url, blobPath('honest', 'most'), { Range: 'bytes=0-99,101-' });
      assert.equal(honestMost.status, 206);
      assert.ok(honestMost.complete && honestMost.headers.etag, `${kind}: most of the blob in two ranges, served verified`);
      const total = await fetchRaw(registry.url, blobPath('bigtotal'), { Range: 'bytes=0-99' });
      assert.equal(total.status, 206);
      assert.ok(total.complete && total.headers.etag && total.body.equals(blob.subarray(0, 100)), `${kind}: a 206 stating another size is not relayed`);
      assert.equal(total.headers['content-range'], `bytes 0-99/${blob.length}`);
      const corruptGets = wholeGets.get('corrupt') ?? 0;
      const corrupt = await Promise.all(['bytes=0-', 'bytes=1024-', 'bytes=0-', 'bytes=9-'].map((r) => fetchRaw(registry.url, blobPath('corrupt', 'range'), { Range: r })));
      for (const res of corrupt) assert.equal(res.status, 502, `${kind} corrupt open range: ${res.status}`);
      // Waiters on the failed fill get its 502; a request that arrives once that fill has ended (the
      // Worker's Durable Object may take them one after another) starts one more: never one each.
      const fetched = (wholeGets.get('corrupt') ?? 0) - corruptGets;
      assert.ok(fetched >= 1 && fetched <= 2, `${kind}: a blob that failed its digest is not fetched again for each waiter (${fetched} fetches for 4 requests)`);
      const open = await Promise.all(['bytes=0-', 'bytes=1024-', 'bytes=0-', 'bytes=7-'].map((r) => fetchRaw(registry.url, blobPath('fresh'), { Range: r })));
      for (const [i, res] of open.entries()) {
        const start = [0, 1024, 0, 7][i];
        assertNoCleanLie(res, blob.subarray(start), `${kind} open range ${start}`);
        assert.equal(res.status, 206);
        assert.ok(res.complete && res.headers.etag, `${kind} open range ${start}: served verified`);
      }
      assert.equal(wholeGets.get('fresh'), 1, `${kind}: four open ranges, one upstream transfer of the blob`);
    });

    test('preconditions on a miss, as once cached: If-Match not holding is 412, If-None-Match with the digest 304; a HEAD with a Range gets what the GET would', async () => {
      const etag = `"${digest}"`;
      const cases: [string, Record<string, string>, string, number][] = [
        ['ifmatch', { 'If-Match': '"sha256:nope"' }, 'GET', 412],
        ['ifmatchhead', { 'If-Match': '"sha256:nope"' }, 'HEAD', 412],
        ['ifmatchrange', { 'If-Match': '"sha256:nope"', Range: 'bytes=0-9' }, 'GET', 412],
        ['inm', { 'If-None-Match': etag }, 'GET', 304],
        ['inmrange', { 'If-None-Match': etag, Range: 'bytes=0-9' }, 'GET', 304],
        ['matching', { 'If-Match': etag }, 'GET', 200],
      ];
      for (const [fresh, headers, method, status] of cases) {
        const miss = await fetchRaw(registry.url, blobPath('honest', fresh), headers, method);
        assert.equal(miss.status, status, `${kind} miss ${method} ${JSON.stringify(headers)}`);
        if (status === 200) assert.ok(miss.complete && miss.body.equals(blob));
        if (status === 412) assert.match(miss.body.toString(), method === 'HEAD' ? /^$/ : /^\{"errors":\[/);
        if (status === 304) assert.equal(miss.body.length, 0);
        const whole = await fetchRaw(registry.url, blobPath('honest', fresh)); // now it is stored
        assert.ok(whole.complete && whole.headers.etag, `${kind}: ${fresh} served verified`);
        const stored = await fetchRaw(registry.url, blobPath('honest', fresh), headers, method);
        assert.equal(stored.status, status, `${kind} cached ${method} ${JSON.stringify(headers)}`);
      }
      const size = blob.length;
      const ranges: [string, number, string | undefined][] = [
        ['bytes=0-9', 206, `bytes 0-9/${size}`],
        ['bytes=-5', 206, `bytes ${size - 5}-${size - 1}/${size}`],
        ['bytes=0-1,10-11', 206, undefined],
        [`bytes=${size}-`, 416, `bytes */${size}`],
        ['items=0-1', 200, undefined],
      ];
      for (const [range, status, contentRange] of ranges) {
        const fresh = `headrange${ranges.findIndex((r) => r[0] === range) + 1}`.replace(/\d/g, (d) => 'abcdefghij'[Number(d)]);
        const head = await fetchRaw(registry.url, blobPath('honest', fresh), { Range: range }, 'HEAD');
        const get = await fetchRaw(registry.url, blobPath('honest', fresh), { Range: range });
        assert.equal(head.status, status, `${kind} HEAD ${range}`);
        assert.equal(get.status, status, `${kind} GET ${range}`);
        assert.equal(head.headers['content-range'], contentRange, `${kind} HEAD ${range}`);
        if (status === 206 && contentRange) assert.equal(head.headers['content-length'], get.headers['content-length'], `${kind} ${range}`);
        if (status === 206 && !contentRange) assert.match(String(head.headers['content-type']), /^multipart\/byteranges; boundary=/);
      }
    });

    test("an upstream tag list of several pages is read whole, on the upstream's origin only, names no registry could hold dropped; concurrent lists share one read", async () => {
      const lists = await Promise.all([0, 1, 2].map(() => fetchRaw(registry.url, '/v2/lies/paged/tags/list')));
      for (const list of lists) {
        assert.equal(list.status, 200, list.body.toString());
        assert.deepEqual(JSON.parse(list.body.toString()).tags, PAGED_TAGS, kind);
      }
      const page = await fetchRaw(registry.url, '/v2/lies/paged/tags/list?n=100&last=t099');
      assert.deepEqual(JSON.parse(page.body.toString()).tags, PAGED_TAGS.slice(100, 200));
      assert.match(String(page.headers.link), /last=t199>; rel="next"/);
    });

    test('a request joining a fill in progress gets the date preconditions of the stored blob', async () => {
      const first = fetchRaw(registry.url, blobPath('ignoreslow', 'dates')); // ~3 s to fill
      await new Promise((r) => setTimeout(r, 300));
      const [since, unmodified] = await Promise.all([
        fetchRaw(registry.url, blobPath('ignoreslow', 'dates'), { 'If-Modified-Since': new Date(Date.UTC(2099, 0, 1)).toUTCString() }),
        fetchRaw(registry.url, blobPath('ignoreslow', 'dates'), { 'If-Unmodified-Since': new Date(Date.UTC(1990, 0, 1)).toUTCString() }),
      ]);
      assert.ok((await first).complete);
      // Each is either answered as the stored blob (304, 412) or, when it came in before anything was
      // stored, as an unverified relay without a date (200); never a date-carrying 200.
      for (const [res, status] of [[since, 304], [unmodified, 412]] as const) {
        assert.ok(res.status === status || (res.status === 200 && res.headers['last-modified'] === undefined), `${kind}: ${res.status} ${JSON.stringify(res.headers)}`);
        const again = await fetchRaw(registry.url, blobPath('ignoreslow', 'dates'), status === 304 ? { 'If-Modified-Since': new Date(Date.UTC(2099, 0, 1)).toUTCString() } : { 'If-Unmodified-Since': new Date(Date.UTC(1990, 0, 1)).toUTCString() });
        assert.equal(again.status, status, kind);
      }
    });

    // serve only: workerd notices a client gone only when it next writes to it, so there a
    // stalled relay is dropped by the client's idle bound on the upstream (30 s, DEPOT_IDLE_TIMEOUT_MS).
    if (kind === 'serve') test('a client that leaves a relayed range whose upstream stalls: the upstream request is dropped at once, not after the idle timeout', async () => {
      stalledRanges.length = 0;
      const url = new URL(registry.url);
      const socket = connect(Number(url.port), url.hostname, () => socket.write(`GET ${blobPath('stallrange')} HTTP/1.1\r\nHost: ${url.host}\r\nRange: bytes=0-9999\r\n\r\n`));
      socket.on('error', () => {});
      let received = 0;
      socket.on('data', (c: Buffer) => (received += c.length));
      await eventually(() => received > 1024 && stalledRanges.length === 1, 'the first KiB relayed');
      assert.equal(stalledRanges[0].closed, false);
      socket.destroy();
      // The upstream idle timeout is 60 s: a close within 10 s is the client's leaving.
      await eventually(() => stalledRanges[0].closed, 'the upstream range request closed', 10_000);
    });

    if (kind === 'serve') {
      test("a range GET answered with the whole blob, slower than the manifest deadline, is the fill: served verified within the fill's deadline", async () => {
        const res = await fetchRaw(registry.url, blobPath('ignoreslow'), { Range: 'bytes=0-99' });
        assert.equal(res.status, 206);
        assert.ok(res.complete && res.headers.etag && res.body.equals(blob.subarray(0, 100)));
      });
    }

    test('a manifest whose media type is not a manifest is refused (502 JSON, nosniff)', async () => {
      const res = await fetchRaw(registry.url, '/v2/lies/honest/manifests/latest');
      assert.equal(res.status, 502);
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      assert.match(res.body.toString(), /not an OCI or Docker manifest/);
    });
  });
}
