// The read-only registry over the store: API semantics, errors, ranges, caching headers,
// content added while running, logging and shutdown. Images come from the real builder.
import assert from 'node:assert/strict';
import { sha256Digest } from '../image/oci.ts';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CLI, depotAi, ROOT, startProcess } from './helpers/cli.ts';
import { buildImage, errorCode, eventually, HeldStore, makeTestImage, raw, startTestRegistry, tempDir, writeModelFolder, type TestImage, type TestRegistry } from './helpers/registry.ts';
import { registryConformance } from './helpers/conformance.ts';

const INDEX = 'application/vnd.oci.image.index.v1+json';
const sha = sha256Digest;

let image: TestImage;
let registry: TestRegistry;
let layer: Buffer;

before(async () => {
  image = await makeTestImage({ name: 'Test-Org/Tiny-Model', tag: 'v1' });
  registry = await startTestRegistry({ store: image.store });
  layer = await readFile(path.join(image.store, ...image.name.split('/'), 'blobs/sha256', image.layer.slice(7)));
});
after(async () => {
  await registry?.close();
});

const get = (p: string, headers: Record<string, string> = {}, method = 'GET') => raw(registry.url, p, { method, headers });
const blobPath = (digest = image.layer) => `/v2/${image.name}/blobs/${digest}`;

registryConformance(() => ({ url: registry.url, image, layer }));

describe('pagination', () => {
  test('tags/list and _catalog with n and last, Link to the next page', async () => {
    const store = await tempDir('pages');
    const src = await tempDir('pages-src');
    await writeModelFolder(src, 'pages', 1024);
    for (const tag of ['a', 'b', 'c', 'd', 'e']) await buildImage('pages/one', src, store, tag);
    await buildImage('pages/two', src, store, 'x');
    const reg = await startTestRegistry({ store });
    try {
      const page1 = await raw(reg.url, '/v2/pages/one/tags/list?n=2');
      assert.deepEqual(JSON.parse(page1.body.toString()).tags, ['a', 'b']);
      assert.equal(page1.headers.link, '</v2/pages/one/tags/list?n=2&last=b>; rel="next"');
      const page2 = await raw(reg.url, '/v2/pages/one/tags/list?n=2&last=b');
      assert.deepEqual(JSON.parse(page2.body.toString()).tags, ['c', 'd']);
      const page3 = await raw(reg.url, '/v2/pages/one/tags/list?n=2&last=d');
      assert.deepEqual(JSON.parse(page3.body.toString()).tags, ['e']);
      assert.equal(page3.headers.link, undefined);
      for (const route of ['/v2/pages/one/tags/list', '/v2/_catalog']) {
        const none = await raw(reg.url, `${route}?n=0`);
        assert.deepEqual(JSON.parse(none.body.toString()).tags ?? JSON.parse(none.body.toString()).repositories, []);
        assert.equal(none.headers.link, undefined, `${route}?n=0 must not link to itself`);
      }
      // A client that follows Link: every page size ends, and the pages add up to the whole list.
      for (const [route, field, all] of [
        ['/v2/pages/one/tags/list', 'tags', ['a', 'b', 'c', 'd', 'e']],
        ['/v2/_catalog', 'repositories', ['pages/one', 'pages/two']],
      ] as const) {
        for (let n = 1; n <= all.length + 1; n++) {
          const seen: string[] = [];
          let next: string | undefined = `${route}?n=${n}`;
          for (let pages = 0; next; pages++) {
            assert.ok(pages <= all.length, `${route} n=${n}: Link keeps going after ${pages} pages`);
            const res = await raw(reg.url, next);
            seen.push(...JSON.parse(res.body.toString())[field]);
            next = /^<([^>]+)>; rel="next"$/.exec(String(res.headers.link ?? ''))?.[1];
          }
          assert.deepEqual(seen, all, `${route} n=${n}`);
        }
      }
      const catalog = await raw(reg.url, '/v2/_catalog?n=1');
      assert.deepEqual(JSON.parse(catalog.body.toString()).repositories, ['pages/one']);
      assert.equal(catalog.headers.link, '</v2/_catalog?n=1&last=pages%2Fone>; rel="next"');
      const rest = await raw(reg.url, '/v2/_catalog?n=1&last=pages%2Fone');
      assert.deepEqual(JSON.parse(rest.body.toString()).repositories, ['pages/two']);
    } finally {
      await reg.close();
    }
  });
});

describe('live store', () => {
  test('a new build and a new tag are served without a restart', async () => {
    const before = await get('/v2/live/model/manifests/main');
    assert.equal(errorCode(before), 'NAME_UNKNOWN');
    const src = await tempDir('live-src');
    await writeModelFolder(src, 'live', 2048);
    await buildImage('Live/Model', src, image.store, 'main');
    const res = await get('/v2/live/model/manifests/main');
    assert.equal(res.status, 200);
    await buildImage('Live/Model', src, image.store, 'second');
    const tags = await get('/v2/live/model/tags/list');
    assert.deepEqual(JSON.parse(tags.body.toString()).tags, ['main', 'second']);
    const catalog = await get('/v2/_catalog');
    assert.deepEqual(JSON.parse(catalog.body.toString()).repositories, ['live/model', image.name]);
  });
});

describe('clients that leave early', () => {
  test('aborted downloads close their files and the server keeps serving', async () => {
    const { readdirSync } = await import('node:fs');
    const { request } = await import('node:http');
    const fds = () => readdirSync('/proc/self/fd').length;
    const before = fds();
    for (let i = 0; i < 20; i++) {
      await new Promise<void>((resolve) => {
        const req = request(`${registry.url}${blobPath()}`, { agent: false, headers: i % 2 ? { Range: 'bytes=0-5000000' } : {} }, (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        });
        req.on('error', () => resolve());
        req.end();
      });
    }
    let after = fds();
    for (let i = 0; i < 50 && after > before; i++) {
      await new Promise((r) => setTimeout(r, 20));
      after = fds();
    }
    assert.ok(after <= before, `${after - before} file descriptors leaked`);
    const res = await get(blobPath());
    assert.equal(sha(res.body), image.layer);
    await eventually(() => registry.lines.some((l) => / 20[06] - \d/.test(l)), 'an aborted download logged with bytes "-"');
  });
});

describe('log and shutdown', () => {
  test('one line per request: method, path, status, bytes, ms', async () => {
    const before = registry.lines.length;
    await get(blobPath(), { Range: 'bytes=0-99' });
    // The previous test's whole-blob GET may be logged after `before` (a line is written when the
    // response closes, which can be after the client has read its last byte): look for the 206.
    const line = await eventually(() => registry.lines.slice(before).find((l) => l.includes(`${image.layer} 206 `)), 'the log line');
    assert.match(line, new RegExp(`GET /v2/${image.name}/blobs/${image.layer} 206 100B \\d+\\.\\dms$`));
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    test(`${signal} stops the server gracefully: requests in flight finish, exit code 0`, async () => {
      const dir = await tempDir('signal');
      const script = path.join(dir, 'serve.mts');
      await writeFile(
        script,
        [
          `import { startRegistry } from ${JSON.stringify(path.join(ROOT, 'registry/server.ts'))};`,
          `import { HeldStore } from ${JSON.stringify(path.join(ROOT, 'test/helpers/registry.ts'))};`,
          `const store = new HeldStore(${JSON.stringify(image.store)});`,
          `const r = await startRegistry({ store, port: 0, handleSignals: true, log: false });`,
          // The blob read goes on only once the server has begun stopping.
          `process.once(${JSON.stringify(signal)}, () => setTimeout(() => store.release(), 20));`,
          `store.entered.then(() => console.log('IN FLIGHT'));`,
          `console.log('URL ' + r.url);`,
          `await r.closed;`,
          `console.log('stopped');`,
        ].join('\n'),
      );
      const server = startProcess(['--import', 'tsx', script]);
      const [, url] = await server.waitFor(/URL (\S+)/);
      const pending = raw(url, blobPath());
      await server.waitFor(/IN FLIGHT/);
      server.child.kill(signal);
      const res = await pending;
      assert.equal(res.status, 200);
      assert.equal(sha(res.body), image.layer);
      assert.equal(await server.exited, 0);
      assert.match(server.stdout, /stopped/);
    });
  }

  test('close() lets a request in flight finish, then stops listening', async () => {
    const store = new HeldStore(image.store);
    const reg = await startTestRegistry({ store });
    const pending = raw(reg.url, blobPath());
    await store.entered;
    const closing = reg.close();
    store.release();
    const res = await pending;
    assert.equal(res.status, 200);
    assert.equal(sha(res.body), image.layer);
    await closing;
    await assert.rejects(raw(reg.url, '/v2/'));
  });
});

describe('depot-ai serve', () => {
  const usage: Array<[string, string[], RegExp]> = [
    ['a bad port', ['--port', 'http'], /--port must be a number from 0 to 65535, not "http"/],
    ['a bad upstream', ['--upstream', 'registry.example.com'], /--upstream must be a registry base URL/],
    ['a bad tag TTL', ['--upstream', 'http://127.0.0.1:9', '--tag-ttl', '5m'], /--tag-ttl must be a whole number of seconds, not "5m"/],
    ['an argument', ['extra'], /serve takes no arguments, got "extra"/],
  ];
  for (const [what, args, message] of usage) {
    test(`${what}: one line, exit 2`, async () => {
      const run = await depotAi(['serve', '--store', image.store, ...args]);
      assert.equal(run.status, 2);
      assert.match(run.stderr, message);
      assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
    });
  }

  test('serves the store, logs each request and stops on SIGTERM with exit code 0', async () => {
    const server = startProcess([CLI, 'serve', '--store', image.store, '--port', '0']);
    const [, url] = await server.waitFor(/serving .* at (http:\S+)/);
    const res = await raw(url, `/v2/${image.name}/manifests/${image.tag}`, { headers: { Accept: INDEX } });
    assert.equal(res.status, 200);
    assert.equal(res.headers['docker-content-digest'], image.index);
    server.child.kill('SIGTERM');
    assert.equal(await server.exited, 0);
    assert.match(server.stdout, new RegExp(`GET /v2/${image.name}/manifests/${image.tag} 200 \\d+B`));
  });
});
