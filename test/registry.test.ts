// The read-only registry over the store: API semantics, errors, ranges, caching headers,
// content added while running, logging and shutdown. Images come from the real builder.
import assert from 'node:assert/strict';
import { sha256Digest } from '../image/oci.ts';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CLI, depotAi, ROOT, startProcess } from './helpers/cli.ts';
import { buildImage, errorCode, eventually, HeldStore, makeTestImage, raw, startTestRegistry, tempDir, writeModelFolder, type TestImage, type TestRegistry } from './helpers/registry.ts';

const INDEX = 'application/vnd.oci.image.index.v1+json';
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
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

describe('base, catalog and tags', () => {
  test('GET /v2/ answers 200 with the API version header', async () => {
    const res = await get('/v2/');
    assert.equal(res.status, 200);
    assert.equal(res.headers['docker-distribution-api-version'], 'registry/2.0');
    assert.deepEqual(JSON.parse(res.body.toString()), {});
  });

  test('_catalog lists the store', async () => {
    const res = await get('/v2/_catalog');
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.body.toString()).repositories, [image.name]);
  });

  test('tags/list, case-insensitive name', async () => {
    const res = await get('/v2/Test-Org/TINY-model/tags/list');
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.body.toString()), { name: image.name, tags: ['v1'] });
  });
});

describe('manifests', () => {
  test('by tag with an index-accepting client: the index, with digest, length, ETag', async () => {
    const res = await get(`/v2/${image.name}/manifests/v1`, { Accept: `${MANIFEST}, ${INDEX}` });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], INDEX);
    assert.equal(res.headers['docker-content-digest'], image.index);
    assert.equal(sha(res.body), image.index);
    assert.equal(Number(res.headers['content-length']), res.body.length);
    assert.equal(res.headers.etag, `"${image.index}"`);
  });

  test('by tag without an index in Accept: the linux/amd64 manifest', async () => {
    const res = await get(`/v2/${image.name}/manifests/v1`, { Accept: MANIFEST });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], MANIFEST);
    assert.equal(res.headers['docker-content-digest'], image.manifest);
    assert.equal(sha(res.body), image.manifest);
  });

  test('by digest: exact bytes, immutable caching; HEAD has the headers and no body', async () => {
    const res = await get(`/v2/${image.name}/manifests/${image.manifest}`);
    assert.equal(res.status, 200);
    assert.equal(sha(res.body), image.manifest);
    assert.match(String(res.headers['cache-control']), /immutable/);
    const head = await get(`/v2/${image.name}/manifests/${image.index}`, {}, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal(head.headers['docker-content-digest'], image.index);
    assert.equal(head.headers['content-type'], INDEX);
    assert.ok(Number(head.headers['content-length']) > 0);
  });

  test('If-None-Match with the digest ETag is a 304', async () => {
    const res = await get(`/v2/${image.name}/manifests/v1`, { 'If-None-Match': `"${image.index}"` });
    assert.equal(res.status, 304);
    assert.equal(res.body.length, 0);
  });

  test('a layer digest is not a manifest', async () => {
    const res = await get(`/v2/${image.name}/manifests/${image.layer}`);
    assert.equal(res.status, 404);
    assert.equal(errorCode(res), 'MANIFEST_UNKNOWN');
  });
});

describe('blobs', () => {
  test('full GET streams the exact bytes with caching headers', async () => {
    const res = await get(blobPath());
    assert.equal(res.status, 200);
    assert.equal(sha(res.body), image.layer);
    assert.equal(res.body.length, image.layerSize);
    assert.equal(res.headers['accept-ranges'], 'bytes');
    assert.equal(res.headers['docker-content-digest'], image.layer);
    assert.equal(res.headers.etag, `"${image.layer}"`);
    assert.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.ok(res.headers['last-modified']);
  });

  test('HEAD: length and digest, no body', async () => {
    const res = await get(blobPath(), {}, 'HEAD');
    assert.equal(res.status, 200);
    assert.equal(Number(res.headers['content-length']), image.layerSize);
    assert.equal(res.body.length, 0);
  });

  test('the config blob', async () => {
    const res = await get(blobPath(image.config));
    assert.equal(res.status, 200);
    assert.equal(sha(res.body), image.config);
  });

  const size = () => layer.length;
  const cases: [string, () => [number, number]][] = [
    ['bytes=0-0', () => [0, 0]],
    ['bytes=10-4105', () => [10, 4105]],
    ['bytes=100-', () => [100, size() - 1]],
    ['bytes=-51', () => [size() - 51, size() - 1]],
    ['bytes=5-999999999999', () => [5, size() - 1]],
    ['bytes=-999999999', () => [0, size() - 1]],
  ];
  for (const [header, expected] of cases) {
    test(`Range ${header}: 206 with Content-Range and the right bytes`, async () => {
      const [start, end] = expected();
      const res = await get(blobPath(), { Range: header });
      assert.equal(res.status, 206);
      assert.equal(res.headers['content-range'], `bytes ${start}-${end}/${size()}`);
      assert.equal(Number(res.headers['content-length']), end - start + 1);
      assert.ok(res.body.equals(layer.subarray(start, end + 1)));
    });
  }

  test('a large range is streamed correctly', async () => {
    const start = 1000;
    const end = size() - 1000;
    const res = await get(blobPath(), { Range: `bytes=${start}-${end}` });
    assert.equal(res.status, 206);
    assert.ok(res.body.equals(layer.subarray(start, end + 1)));
  });

  for (const header of ['bytes=99999999999-', 'bytes=5-1', 'bytes=abc', 'bytes=-0', 'bytes=', 'bytes=1-2-3', 'bytes']) {
    test(`Range ${JSON.stringify(header)}: 416 with bytes */size`, async () => {
      const res = await get(blobPath(), { Range: header });
      assert.equal(res.status, 416);
      assert.equal(res.headers['content-range'], `bytes */${size()}`);
      assert.equal(errorCode(res), 'RANGE_INVALID');
    });
  }

  test('another unit: the full blob (several ranges: test/lazy-ranges.test.ts)', async () => {
    const res = await get(blobPath(), { Range: 'items=0-1' });
    assert.equal(res.status, 200);
    assert.equal(res.body.length, size());
  });

  test('If-Range: matching ETag honours the range, another one gets the full blob', async () => {
    const hit = await get(blobPath(), { Range: 'bytes=0-9', 'If-Range': `"${image.layer}"` });
    assert.equal(hit.status, 206);
    const miss = await get(blobPath(), { Range: 'bytes=0-9', 'If-Range': '"sha256:other"' });
    assert.equal(miss.status, 200);
    assert.equal(miss.body.length, size());
  });

  test('If-Range with a date (RFC 9110 §13.1.5): a range only for exactly the Last-Modified, generated validators', async () => {
    const lastModified = (await get(blobPath(), {}, 'HEAD')).headers['last-modified'] as string;
    const at = Date.parse(lastModified);
    assert.ok(!Number.isNaN(at), `Last-Modified: ${lastModified}`);
    const date = (ms: number) => new Date(ms).toUTCString();
    const validators: [string, number][] = [
      [lastModified, 206],
      [` ${lastModified} `, 206],
      ...[1000, 59_000, 86_400_000, 365 * 86_400_000, Date.now() + 86_400_000 - at].map((d): [string, number] => [date(at + d), 200]),
      ...[1000, 86_400_000, at].map((d): [string, number] => [date(at - d), 200]),
      [`W/"${image.layer}"`, 200], // a weak tag never matches (strong comparison)
      ['not a date', 200],
    ];
    for (const [validator, status] of validators) {
      const res = await get(blobPath(), { Range: 'bytes=0-9', 'If-Range': validator });
      assert.equal(res.status, status, `If-Range ${JSON.stringify(validator)} against Last-Modified ${lastModified}`);
      assert.equal(res.body.length, status === 206 ? 10 : size());
    }
  });

  test('conditional requests: If-None-Match and If-Modified-Since', async () => {
    assert.equal((await get(blobPath(), { 'If-None-Match': `"${image.layer}"` })).status, 304);
    assert.equal((await get(blobPath(), { 'If-None-Match': '*' })).status, 304);
    assert.equal((await get(blobPath(), { 'If-None-Match': '"sha256:nope"' }, 'HEAD')).status, 200);
    assert.equal((await get(blobPath(), { 'If-Modified-Since': new Date(Date.now() + 60_000).toUTCString() })).status, 304);
    assert.equal((await get(blobPath(), { 'If-Modified-Since': new Date(0).toUTCString() }, 'HEAD')).status, 200);
  });
});

describe('bad requests get the documented error, and the server keeps serving', () => {
  const zero = `sha256:${'0'.repeat(64)}`;
  const cases: [string, string, number, string, Record<string, string>?][] = [
    ['GET', '/v2/-bad-/manifests/v1', 400, 'NAME_INVALID'],
    ['GET', '/v2/a__b___c/tags/list', 400, 'NAME_INVALID'],
    ['GET', '/v2/a//b/manifests/v1', 400, 'NAME_INVALID'],
    ['GET', '/v2/a%20b/manifests/v1', 400, 'NAME_INVALID'],
    [`GET`, `/v2/${'a'.repeat(256)}/manifests/v1`, 400, 'NAME_INVALID'],
    ['GET', '/v2/test-org%2Ftiny-model/manifests/v1', 400, 'NAME_INVALID'],
    ['GET', '/v2/test-org%2ftiny-model/tags/list', 400, 'NAME_INVALID'],
    ['GET', '/v2/test-org/../tiny-model/manifests/v1', 400, 'NAME_INVALID'],
    ['GET', '/v2/../../../../etc/passwd', 400, 'NAME_INVALID'],
    ['GET', '/v2/test-org/%2e%2e/%2E%2E/etc/blobs/' + zero, 400, 'NAME_INVALID'],
    ['GET', '/v2/./_catalog', 400, 'NAME_INVALID'],
    ['GET', '/v2/nobody/nothing/manifests/v1', 404, 'NAME_UNKNOWN'],
    ['GET', '/v2/nobody/nothing/tags/list', 404, 'NAME_UNKNOWN'],
    ['GET', `/v2/nobody/nothing/blobs/${zero}`, 404, 'NAME_UNKNOWN'],
    ['GET', '/v2/test-org/tiny-model/manifests/v2', 404, 'MANIFEST_UNKNOWN'],
    ['GET', '/v2/test-org/tiny-model/manifests/.INVALID_MANIFEST_NAME', 404, 'MANIFEST_UNKNOWN'],
    ['GET', '/v2/test-org/tiny-model/manifests/sha256:abc', 404, 'MANIFEST_UNKNOWN'],
    ['GET', '/v2/test-org/tiny-model/manifests/v1%2F..%2F..', 404, 'MANIFEST_UNKNOWN'],
    ['GET', `/v2/test-org/tiny-model/manifests/${'t'.repeat(129)}`, 404, 'MANIFEST_UNKNOWN'],
    ['GET', `/v2/test-org/tiny-model/manifests/${zero}`, 404, 'MANIFEST_UNKNOWN'],
    ['GET', `/v2/test-org/tiny-model/blobs/${zero}`, 404, 'BLOB_UNKNOWN'],
    ['GET', '/v2/test-org/tiny-model/blobs/sha256:abc', 400, 'DIGEST_INVALID'],
    ['GET', `/v2/test-org/tiny-model/blobs/sha256:${'A'.repeat(64)}`, 400, 'DIGEST_INVALID'],
    ['GET', `/v2/test-org/tiny-model/blobs/sha512:${'0'.repeat(128)}`, 400, 'DIGEST_INVALID'],
    ['GET', '/v2/test-org/tiny-model/blobs/..%2F..%2Findex.json', 400, 'DIGEST_INVALID'],
    ['GET', '/v2/test-org/tiny-model/blobs/index.json', 400, 'DIGEST_INVALID'],
    ['GET', '/v2/test-org/tiny-model/tags/list?n=abc', 400, 'PAGINATION_NUMBER_INVALID'],
    ['GET', '/v2/test-org/tiny-model/tags/list?n=-1', 400, 'PAGINATION_NUMBER_INVALID'],
    ['GET', '/v2/test-org/tiny-model/referrers/sha256:abc', 400, 'DIGEST_INVALID'],
    ['GET', `/v2/nobody/nothing/referrers/${zero}`, 404, 'NAME_UNKNOWN'],
    ['GET', `/v2/test-org/tiny-model/referrers/${zero}/more`, 404, 'NOT_FOUND'],
    ['GET', '/etc/passwd', 404, 'NOT_FOUND'],
    ['PUT', '/v2/test-org/tiny-model/manifests/v1', 405, 'UNSUPPORTED'],
    ['DELETE', '/v2/test-org/tiny-model/manifests/v1', 405, 'UNSUPPORTED'],
    ['DELETE', `/v2/test-org/tiny-model/blobs/${zero}`, 405, 'UNSUPPORTED'],
    ['POST', '/v2/test-org/tiny-model/blobs/uploads/', 405, 'UNSUPPORTED'],
    ['PATCH', '/v2/test-org/tiny-model/blobs/uploads/abc', 405, 'UNSUPPORTED'],
    ['PUT', `/v2/test-org/tiny-model/blobs/uploads/abc?digest=${zero}`, 405, 'UNSUPPORTED'],
    ['POST', '/v2/', 405, 'UNSUPPORTED'],
  ];
  for (const [method, p, status, code] of cases) {
    test(`${method} ${p.length > 90 ? p.slice(0, 90) + '…' : p} -> ${status} ${code}`, async () => {
      const res = await raw(registry.url, p, { method, body: method === 'GET' ? undefined : '{}' });
      assert.equal(res.status, status);
      assert.equal(errorCode(res), code);
      assert.match(String(res.headers['content-type']), /^application\/json/);
      if (status === 405) assert.equal(res.headers.allow, 'GET, HEAD');
      // still serving
      const ok = await get(`/v2/${image.name}/manifests/v1`, {}, 'HEAD');
      assert.equal(ok.status, 200);
    });
  }

  test('HEAD errors carry the status and no body', async () => {
    const res = await get(`/v2/test-org/tiny-model/blobs/${zero}`, {}, 'HEAD');
    assert.equal(res.status, 404);
    assert.equal(res.body.length, 0);
  });
});

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
