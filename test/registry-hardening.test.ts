// Hostile clients against `serve` (issue 9, findings 7 and 16): clients that never read their
// response cannot make the server hold a buffer each, a stalled connection is closed, and every
// request refused before the app runs still gets the spec's error JSON.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { sha256Digest } from '../image/oci.ts';
import { CLI, startProcess } from './helpers/cli.ts';
import { eventually, makeTestImage, raw, startTestRegistry, type TestImage } from './helpers/registry.ts';
import { residentBytes, startSlowReaders } from './helpers/slow-readers.ts';

const MiB = 2 ** 20;
let image: TestImage;

before(async () => {
  image = await makeTestImage({ name: 'hostile/slow', tag: 'v1', weights: 9 * MiB });
});

describe('slow readers (finding 7; issue 10 red team A: every answer shape)', () => {
  // Each shape of blob answer, from the same store: the whole blob, one range, several ranges
  // (multipart/byteranges, parts larger and smaller than an in-memory read).
  const shapes: [string, string | undefined][] = [
    ['whole blob', undefined],
    ['one range', 'bytes=0-8000000'],
    ['two ranges (multipart)', 'bytes=0-3000000,3000002-8000000'],
    ['40 ranges of 150 kB (multipart)', Array.from({ length: 40 }, (_, i) => `${i * 200_000}-${i * 200_000 + 149_999}`).join(',').replace(/^/, 'bytes=')],
  ];
  for (const [shape, range] of shapes) {
    test(`${shape}: 300 clients that never read a 9 MiB blob do not cost a MiB each; others are still served in full`, async () => {
      const serve = startProcess([CLI, 'serve', '--store', image.store, '--port', '0']);
      try {
        const [, url, port] = await serve.waitFor(/at (http:\/\/127\.0\.0\.1:(\d+))/);
        const blob = `/v2/${image.name}/blobs/${image.layer}`;
        assert.equal(sha256Digest((await raw(url, blob)).body), image.layer); // warm
        const before = await residentBytes(serve.child.pid!);
        const readers = await startSlowReaders(Number(port), blob, 300, range);
        try {
          // Every reader got its headers and a stalled body: the server holds what it will hold.
          const manifest = await raw(url, `/v2/${image.name}/manifests/${image.tag}`, { headers: { Accept: 'application/vnd.oci.image.index.v1+json' } });
          assert.equal(manifest.status, 200);
          const full = await raw(url, blob);
          assert.equal(full.status, 200);
          assert.equal(sha256Digest(full.body), image.layer, 'a normal client gets the whole blob, byte for byte');
          const growth = (await residentBytes(serve.child.pid!)) - before;
          // Pump buffers: 64 MiB shared + 64 KiB each (~83 MiB). Unbounded, each stalled response
          // held a MiB or more (whole blob: two 1 MiB buffers; multipart: ~4 MiB of web stream chunks).
          assert.ok(growth < 250 * MiB, `serve grew by ${(growth / MiB).toFixed(0)} MiB for 300 stalled readers`);
        } finally {
          readers.close();
        }
      } finally {
        serve.child.kill('SIGTERM');
        await serve.exited;
      }
    });
  }

  test('a response whose client accepts no bytes is closed within the idle timeout (DEPOT_SERVE_IDLE_TIMEOUT_MS), whatever its shape', async () => {
    // Larger than what the kernel buffers of one loopback connection take (about 10 MiB here).
    const big = await makeTestImage({ name: 'hostile/big', tag: 'v1', weights: 40 * MiB });
    const idle = 2000;
    process.env.DEPOT_SERVE_IDLE_TIMEOUT_MS = String(idle);
    const registry = await startTestRegistry({ store: big.store });
    delete process.env.DEPOT_SERVE_IDLE_TIMEOUT_MS;
    try {
      const blob = `/v2/${big.name}/blobs/${big.layer}`;
      const ranges = [undefined, 'bytes=0-30000000', 'bytes=0-10000000,10000002-30000000'];
      const readers = await Promise.all(ranges.map((range) => startSlowReaders(registry.port, blob, 1, range)));
      // The request log writes a line when a response closes, with how long it was open.
      const lines = await eventually(() => {
        const closed = registry.lines.filter((l) => l.includes(blob));
        return closed.length === ranges.length && closed;
      }, 'the server to close stalled connections');
      for (const line of lines) {
        const open = Number(/ ([\d.]+)ms$/.exec(line)?.[1]);
        // Node's socket timeout alone closed them after two periods (4 s for 2 s).
        assert.ok(open >= idle / 2 && open < idle * 1.5, `stalled response closed after ${open} ms (idle timeout ${idle} ms): ${line}`);
      }
      const ok = await raw(registry.url, '/v2/');
      assert.equal(ok.status, 200);
      // Reading at last, each client gets what the kernel held, then the end: less than the blob.
      for (const reader of readers) for (const received of await reader.drain()) assert.ok(received < big.layerSize, `received ${received} of ${big.layerSize} bytes`);
    } finally {
      await registry.close();
    }
  });
});

/** Sends `request` on a raw socket and returns everything the server wrote before closing. */
function rawExchange(port: number, request: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(request));
    let out = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      out += d;
      // One response is enough: a keep-alive connection would otherwise stay open.
      const head = out.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(out.slice(0, head));
      if (head >= 0 && length && out.length >= head + 4 + Number(length[1])) socket.end();
    });
    socket.on('close', () => resolve(out));
    socket.on('error', reject);
  });
}

describe('requests refused before the app runs (finding 16)', () => {
  let registry: Awaited<ReturnType<typeof startTestRegistry>>;
  before(async () => {
    registry = await startTestRegistry({ store: image.store });
  });
  after(async () => {
    await registry?.close();
  });

  const controlBytes = [...Array.from({ length: 0x20 }, (_, i) => i).filter((b) => b !== 0x0a && b !== 0x0d), 0x7f];
  const cases: [string, string][] = [
    ...controlBytes.map((b): [string, string] => [`control byte 0x${b.toString(16)} in the path`, `GET /v2/a${String.fromCharCode(b)}b/tags/list HTTP/1.1\r\nHost: x\r\n\r\n`]),
    ...['/v2/a\\b/tags/list', '/v2\\..\\_catalog', '\\v2\\'].map((p): [string, string] => [`backslash: ${p}`, `GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`]),
    ...['', 'a b', '[::1', 'x/y', 'x:99999', 'x@y', 'x?y', 'x#y'].map((h): [string, string] => [`Host "${h}"`, `GET /v2/ HTTP/1.1\r\nHost: ${h}\r\n\r\n`]),
    ['no Host', 'GET /v2/ HTTP/1.1\r\n\r\n'],
    ['two Hosts', 'GET /v2/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'],
    ['relative path', 'GET v2/ HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['asterisk', 'GET * HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['space in a header name', 'GET /v2/ HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n'],
    ['bad Content-Length', 'GET /v2/ HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'],
    ['garbage', 'GARBAGE\r\n\r\n'],
    ['headers too large', `GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`],
  ];
  for (const [what, request] of cases) {
    test(`${what}: 4xx with the spec's error JSON`, async () => {
      const answer = await rawExchange(registry.port, request);
      const [head, body] = [answer.slice(0, answer.indexOf('\r\n\r\n')), answer.slice(answer.indexOf('\r\n\r\n') + 4)];
      const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(head)?.[1]);
      assert.ok(status >= 400 && status < 500, `status of ${JSON.stringify(request.slice(0, 60))}: ${head}`);
      assert.match(head, /\r\ncontent-type: application\/json/i);
      assert.match(head, /\r\ndocker-distribution-api-version: registry\/2\.0/i);
      const errors = JSON.parse(body).errors;
      assert.ok(Array.isArray(errors) && typeof errors[0].code === 'string' && errors[0].message, body);
    });
  }
});
