// The client's building blocks, by kind: the blob verifier never hands on the last byte of a wrong
// blob (generated corruptions, truncations, extensions, chunkings); the transport's idle timeout
// covers the body; redirects are bounded; error bodies and tokens are read with a ceiling.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RegistryClient } from '../client/remote.ts';
import { verifyingStream } from '../client/verify.ts';
import { sha256Digest } from '../image/oci.ts';
import { startLyingServer, type LyingServer } from './helpers/lying-server.ts';
import { pseudoRandom } from './helpers/registry.ts';

/** Feed `bytes` in pieces of `piece` through a verifier for `expected`; what came out, and the error. */
async function pass(bytes: Buffer, piece: number, expected: { digest: string; size: number }) {
  const out: Uint8Array[] = [];
  const source = new ReadableStream<Uint8Array>({
    start(controller) {
      for (let i = 0; i < bytes.length; i += piece) controller.enqueue(bytes.subarray(i, i + piece));
      controller.close();
    },
  });
  const reader = source.pipeThrough(verifyingStream(expected, 'blob')).getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { out: Buffer.concat(out), error: undefined };
      out.push(value);
    }
  } catch (error) {
    return { out: Buffer.concat(out), error: error as Error };
  }
}

describe('verifyingStream', () => {
  const blob = pseudoRandom('verify', 70_001);
  const expected = { digest: sha256Digest(blob), size: blob.length };

  test('the right bytes pass whole, in any chunking', async () => {
    for (const piece of [1_000, 4_096, 65_536, 70_001, 100_000]) {
      const { out, error } = await pass(blob, piece, expected);
      assert.equal(error, undefined);
      assert.ok(out.equals(blob), `piece ${piece}`);
    }
  });

  test('a flipped byte anywhere, a truncation or an extension: an error, and never the whole blob', async () => {
    const cases: Array<[string, Buffer]> = [];
    for (const at of [0, 1, 4_095, 35_000, 69_999, 70_000]) {
      const bad = Buffer.from(blob);
      bad[at] ^= 0x40;
      cases.push([`byte ${at} flipped`, bad]);
    }
    for (const cut of [0, 1, 4_096, 70_000]) cases.push([`cut to ${cut}`, blob.subarray(0, cut)]);
    for (const extra of [1, 5_000]) cases.push([`${extra} bytes added`, Buffer.concat([blob, Buffer.alloc(extra)])]);
    for (const [what, bad] of cases) {
      for (const piece of [4_096, 70_001]) {
        const { out, error } = await pass(bad, piece, expected);
        assert.ok(error, `${what} / ${piece}: no error`);
        assert.ok(out.length < Math.min(bad.length, blob.length) || bad.length === 0, `${what} / ${piece}: ${out.length} bytes handed on`);
      }
    }
  });
});

describe('transport', () => {
  let server: LyingServer;
  let behave: Parameters<typeof startLyingServer>[0];
  before(async () => {
    server = await startLyingServer((req, res, body) => behave(req, res, body));
  });
  after(() => server?.close());

  test('a registry that stalls in the middle of a body fails the read after the idle timeout', async () => {
    const blob = pseudoRandom('stall', 100_000);
    behave = (req, res) => {
      res.writeHead(200, { 'Content-Length': String(blob.length) });
      res.write(blob.subarray(0, 10_000));
    };
    const client = new RegistryClient(server.hostPort, { insecure: true, idleTimeoutMs: 300 });
    const started = Date.now();
    await assert.rejects(async () => new Response(await client.openBlob('a/b', { mediaType: 'x', digest: sha256Digest(blob), size: blob.length })).arrayBuffer(), /sent nothing for 0\.3 s/);
    assert.ok(Date.now() - started < 20_000, 'failed, not hung');
  });

  test('a redirect loop ends after 5 hops with one clear error', async () => {
    behave = (req, res) => res.writeHead(302, { Location: `${req.url}x` }).end();
    const client = new RegistryClient(server.hostPort, { insecure: true });
    await assert.rejects(client.manifest('a/b', 'latest'), /more than 5 redirects/);
  });

  test('an oversized error body is not read whole; the status still makes one line', async () => {
    behave = (req, res) => {
      res.writeHead(400, { 'Content-Type': 'application/json' });
      res.end(`{"errors":[{"code":"DENIED","message":"${'x'.repeat(200_000)}"}]}`);
    };
    const client = new RegistryClient(server.hostPort, { insecure: true });
    await assert.rejects(client.manifest('a/b', 'latest'), (error: Error) => /^GET http:\/\/.*\/v2\/a\/b\/manifests\/latest: 400$/.test(error.message));
  });

  test('a manifest larger than 4 MiB is refused without reading it whole', async () => {
    let sent = 0;
    behave = (req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' });
      const chunk = Buffer.alloc(1 << 20, 0x20);
      const more = () => {
        while (sent < 64 << 20 && res.write(chunk)) sent += chunk.length;
        if (sent < 64 << 20) res.once('drain', more);
        else res.end();
      };
      more();
    };
    const client = new RegistryClient(server.hostPort, { insecure: true });
    await assert.rejects(client.manifest('a/b', 'latest'), /larger than the 4194304 bytes allowed/);
    assert.ok(sent < 32 << 20, `the registry got to send ${sent} bytes`);
  });

  test('GET is retried on 503 and a reset; POST is tried once', async () => {
    let gets = 0;
    let posts = 0;
    behave = (req, res) => {
      if (req.method === 'POST') {
        posts++;
        res.writeHead(503).end();
        return;
      }
      gets++;
      if (gets === 1) res.writeHead(503).end();
      else if (gets === 2) res.destroy();
      else res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
    };
    const saved = process.env.DEPOT_RETRY_DELAY_MS;
    process.env.DEPOT_RETRY_DELAY_MS = '1';
    try {
      const client = new RegistryClient(server.hostPort, { insecure: true });
      assert.equal((await client.transport.send('GET', 'a/b/tags/list')).status, 200);
      assert.equal(gets, 3);
      await assert.rejects(client.transport.send('POST', 'a/b/blobs/uploads/'), /: 503$/);
      assert.equal(posts, 1);
    } finally {
      if (saved === undefined) delete process.env.DEPOT_RETRY_DELAY_MS;
      else process.env.DEPOT_RETRY_DELAY_MS = saved;
    }
  });
});
