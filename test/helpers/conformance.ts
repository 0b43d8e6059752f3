// The registry API's observable behaviour, run against every runtime (`serve` in
// test/registry.test.ts, the Cloudflare Worker in test/worker.test.ts): base, catalog, tags,
// manifests, blobs, ranges (one, several: multipart/byteranges), conditional requests and the OCI
// error JSON for bad requests.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sha256Digest } from '../../image/oci.ts';
import { assertRangeAnswer, expectedRuns, generatedSpecs, rangeHeader } from './byteranges.ts';
import { errorCode, raw, type TestImage } from './registry.ts';

const INDEX = 'application/vnd.oci.image.index.v1+json';
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const sha = sha256Digest;

/** Paths with dot segments: a traversal attempt, refused before anything is looked up. */
const DOT_SEGMENT_CASES: [string, string, number, string][] = [
  ['GET', '/v2/test-org/../tiny-model/manifests/v1', 400, 'NAME_INVALID'],
  ['GET', '/v2/../../../../etc/passwd', 400, 'NAME_INVALID'],
  ['GET', `/v2/test-org/%2e%2e/%2E%2E/etc/blobs/sha256:${'0'.repeat(64)}`, 400, 'NAME_INVALID'],
  ['GET', '/v2/./_catalog', 400, 'NAME_INVALID'],
];

export interface ConformanceTarget {
  url: string;
  /** The one image the registry serves (test-org/tiny-model:v1 from makeTestImage). */
  image: TestImage;
  /** Its layer's bytes. */
  layer: Buffer;
}

/**
 * Register the conformance tests; `target` is called once the suite's before() hook has run.
 * `dotSegments: false` for a runtime whose platform resolves `..` and `.` before the app sees the
 * path (workerd, like Cloudflare's edge): those paths are then tested by the runtime's own file.
 */
export function registryConformance(target: () => ConformanceTarget, options: { dotSegments?: boolean } = {}): void {
  const get = (p: string, headers: Record<string, string> = {}, method = 'GET') => raw(target().url, p, { method, headers });
  const blobPath = (digest = target().image.layer) => `/v2/${target().image.name}/blobs/${digest}`;
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
      assert.deepEqual(JSON.parse(res.body.toString()).repositories, [target().image.name]);
    });

    test('tags/list, case-insensitive name', async () => {
      const res = await get('/v2/Test-Org/TINY-model/tags/list');
      assert.equal(res.status, 200);
      assert.deepEqual(JSON.parse(res.body.toString()), { name: target().image.name, tags: ['v1'] });
    });
  });

  describe('manifests', () => {
    test('by tag with an index-accepting client: the index, with digest, length, ETag', async () => {
      const res = await get(`/v2/${target().image.name}/manifests/v1`, { Accept: `${MANIFEST}, ${INDEX}` });
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-type'], INDEX);
      assert.equal(res.headers['docker-content-digest'], target().image.index);
      assert.equal(sha(res.body), target().image.index);
      assert.equal(Number(res.headers['content-length']), res.body.length);
      assert.equal(res.headers.etag, `"${target().image.index}"`);
    });

    test('by tag without an index in Accept: the linux/amd64 manifest', async () => {
      const res = await get(`/v2/${target().image.name}/manifests/v1`, { Accept: MANIFEST });
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-type'], MANIFEST);
      assert.equal(res.headers['docker-content-digest'], target().image.manifest);
      assert.equal(sha(res.body), target().image.manifest);
    });

    test('by digest: exact bytes, immutable caching; HEAD has the headers and no body', async () => {
      const res = await get(`/v2/${target().image.name}/manifests/${target().image.manifest}`);
      assert.equal(res.status, 200);
      assert.equal(sha(res.body), target().image.manifest);
      assert.match(String(res.headers['cache-control']), /immutable/);
      const head = await get(`/v2/${target().image.name}/manifests/${target().image.index}`, {}, 'HEAD');
      assert.equal(head.status, 200);
      assert.equal(head.body.length, 0);
      assert.equal(head.headers['docker-content-digest'], target().image.index);
      assert.equal(head.headers['content-type'], INDEX);
      assert.ok(Number(head.headers['content-length']) > 0);
    });

    test('If-None-Match with the digest ETag is a 304', async () => {
      const res = await get(`/v2/${target().image.name}/manifests/v1`, { 'If-None-Match': `"${target().image.index}"` });
      assert.equal(res.status, 304);
      assert.equal(res.body.length, 0);
    });

    test('a layer digest is not a manifest', async () => {
      const res = await get(`/v2/${target().image.name}/manifests/${target().image.layer}`);
      assert.equal(res.status, 404);
      assert.equal(errorCode(res), 'MANIFEST_UNKNOWN');
    });
  });

  describe('blobs', () => {
    test('full GET streams the exact bytes with caching headers', async () => {
      const res = await get(blobPath());
      assert.equal(res.status, 200);
      assert.equal(sha(res.body), target().image.layer);
      assert.equal(res.body.length, target().image.layerSize);
      assert.equal(res.headers['accept-ranges'], 'bytes');
      assert.equal(res.headers['docker-content-digest'], target().image.layer);
      assert.equal(res.headers.etag, `"${target().image.layer}"`);
      assert.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable');
      assert.ok(res.headers['last-modified']);
    });

    test('HEAD: length and digest, no body', async () => {
      const res = await get(blobPath(), {}, 'HEAD');
      assert.equal(res.status, 200);
      assert.equal(Number(res.headers['content-length']), target().image.layerSize);
      assert.equal(res.body.length, 0);
    });

    test('the config blob', async () => {
      const res = await get(blobPath(target().image.config));
      assert.equal(res.status, 200);
      assert.equal(sha(res.body), target().image.config);
    });

    const size = () => target().layer.length;
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
        assert.ok(res.body.equals(target().layer.subarray(start, end + 1)));
      });
    }

    test('a large range is streamed correctly', async () => {
      const start = 1000;
      const end = size() - 1000;
      const res = await get(blobPath(), { Range: `bytes=${start}-${end}` });
      assert.equal(res.status, 206);
      assert.ok(res.body.equals(target().layer.subarray(start, end + 1)));
    });

    for (const header of ['bytes=99999999999-', 'bytes=5-1', 'bytes=abc', 'bytes=-0', 'bytes=', 'bytes=1-2-3', 'bytes']) {
      test(`Range ${JSON.stringify(header)}: 416 with bytes */size`, async () => {
        const res = await get(blobPath(), { Range: header });
        assert.equal(res.status, 416);
        assert.equal(res.headers['content-range'], `bytes */${size()}`);
        assert.equal(errorCode(res), 'RANGE_INVALID');
      });
    }

    test('another unit: the full blob', async () => {
      const res = await get(blobPath(), { Range: 'items=0-1' });
      assert.equal(res.status, 200);
      assert.equal(res.body.length, size());
    });

    test('If-Range: matching ETag honours the range, another one gets the full blob', async () => {
      const hit = await get(blobPath(), { Range: 'bytes=0-9', 'If-Range': `"${target().image.layer}"` });
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
        [`W/"${target().image.layer}"`, 200], // a weak tag never matches (strong comparison)
        ['not a date', 200],
      ];
      for (const [validator, status] of validators) {
        const res = await get(blobPath(), { Range: 'bytes=0-9', 'If-Range': validator });
        assert.equal(res.status, status, `If-Range ${JSON.stringify(validator)} against Last-Modified ${lastModified}`);
        assert.equal(res.body.length, status === 206 ? 10 : size());
      }
    });

    test('conditional requests: If-None-Match and If-Modified-Since', async () => {
      assert.equal((await get(blobPath(), { 'If-None-Match': `"${target().image.layer}"` })).status, 304);
      assert.equal((await get(blobPath(), { 'If-None-Match': '*' })).status, 304);
      assert.equal((await get(blobPath(), { 'If-None-Match': '"sha256:nope"' }, 'HEAD')).status, 200);
      assert.equal((await get(blobPath(), { 'If-Modified-Since': new Date(Date.now() + 60_000).toUTCString() })).status, 304);
      assert.equal((await get(blobPath(), { 'If-Modified-Since': new Date(0).toUTCString() }, 'HEAD')).status, 200);
      const full = await get(blobPath(), { 'If-Modified-Since': new Date(0).toUTCString() });
      assert.equal(full.status, 200);
      assert.ok(full.body.equals(target().layer));
      const lastModified = (await get(blobPath(), {}, 'HEAD')).headers['last-modified'] as string;
      const notModified = await get(blobPath(), { 'If-Modified-Since': lastModified, Range: 'bytes=0-9' });
      assert.equal(notModified.status, 304);
      assert.equal(notModified.body.length, 0);
      assert.equal(notModified.headers['last-modified'], lastModified);
      const modified = await get(blobPath(), { 'If-Modified-Since': new Date(Date.parse(lastModified) - 1000).toUTCString(), Range: 'bytes=0-9' });
      assert.equal(modified.status, 206);
      assert.ok(modified.body.equals(target().layer.subarray(0, 10)));
    });

    test('If-Modified-Since at any date, in each HTTP-date form; a value that is no HTTP-date is ignored (RFC 9110 §13.1.3)', async () => {
      const lastModified = Date.parse((await get(blobPath(), {}, 'HEAD')).headers['last-modified'] as string);
      const size = target().layer.length;
      const asctime = (ms: number) => {
        const d = new Date(ms).toUTCString().split(' '); // Sun, 06 Nov 1994 08:49:37 GMT
        return `${d[0].slice(0, 3)} ${d[2]} ${String(Number(d[1])).padStart(2, ' ')} ${d[4]} ${d[3]}`;
      };
      const dates: [string, boolean][] = [
        ...[0, 1000, 86_400_000, 365 * 86_400_000, Date.UTC(2263, 0, 1) - lastModified, Date.UTC(9999, 11, 31, 23, 59, 59) - lastModified].map((d): [string, boolean] => [new Date(lastModified + d).toUTCString(), true]),
        [asctime(lastModified), true],
        [asctime(lastModified - 1000), false],
        ...[1000, 86_400_000, lastModified - Date.UTC(1969, 11, 31, 23, 59, 59), lastModified - Date.UTC(1900, 0, 1), lastModified - Date.UTC(1600, 0, 1)].map((d): [string, boolean] => [new Date(lastModified - d).toUTCString(), false]),
      ];
      for (const [date, notModified] of dates) {
        for (const range of [undefined, 'bytes=0-9', `bytes=${size + 1}-`]) {
          const res = await get(blobPath(), { 'If-Modified-Since': date, ...(range ? { Range: range } : {}) });
          const expected = notModified ? 304 : range === undefined ? 200 : range === 'bytes=0-9' ? 206 : 416;
          assert.equal(res.status, expected, `If-Modified-Since ${date}, Range ${range}`);
          assert.equal(res.body.length, expected === 200 ? size : expected === 206 ? 10 : res.body.length, `If-Modified-Since ${date}, Range ${range}`);
          assert.equal((await get(blobPath(), { 'If-Modified-Since': date, ...(range ? { Range: range } : {}) }, 'HEAD')).status, expected, `HEAD, If-Modified-Since ${date}, Range ${range}`);
        }
      }
      for (const junk of [new Date(Date.UTC(275_000, 0, 1)).toUTCString() /* a 6-digit year */, '2099', '2099-01-01', 'Dec 2099', 'tomorrow 2099', new Date(lastModified + 86_400_000).toISOString(), 'Thu, 31 Feb 2099 00:00:00 GMT', 'Thu, 01 Jan 2099 25:00:00 GMT']) {
        const res = await get(blobPath(), { 'If-Modified-Since': junk });
        assert.equal(res.status, 200, `If-Modified-Since ${JSON.stringify(junk)} is no HTTP-date`);
        assert.equal(res.body.length, size);
      }
      const isoRange = await get(blobPath(), { Range: 'bytes=0-9', 'If-Range': new Date(lastModified).toISOString() });
      assert.equal(isoRange.status, 200, 'an If-Range date that is no HTTP-date never matches');
    });

    test('If-Match and If-Unmodified-Since (RFC 9110 §13.1.1, §13.1.4): 412 with error JSON when they do not hold', async () => {
      const etag = `"${target().image.layer}"`;
      const lastModified = Date.parse((await get(blobPath(), {}, 'HEAD')).headers['last-modified'] as string);
      const cases: [Record<string, string>, number][] = [
        [{ 'If-Match': etag }, 200],
        [{ 'If-Match': '*' }, 200],
        [{ 'If-Match': `"sha256:nope", ${etag}` }, 200],
        [{ 'If-Match': '"sha256:nope"' }, 412],
        [{ 'If-Match': `W/${etag}` }, 412], // strong comparison
        [{ 'If-Match': '"sha256:nope"', Range: 'bytes=0-9' }, 412],
        [{ 'If-Unmodified-Since': new Date(lastModified).toUTCString() }, 200],
        [{ 'If-Unmodified-Since': new Date(lastModified + 86_400_000).toUTCString(), Range: 'bytes=0-9' }, 206],
        [{ 'If-Unmodified-Since': new Date(lastModified - 1000).toUTCString() }, 412],
        [{ 'If-Unmodified-Since': new Date(Date.UTC(1990, 0, 1)).toUTCString(), Range: 'bytes=0-9' }, 412],
        [{ 'If-Unmodified-Since': '1990' }, 200], // not an HTTP-date: ignored
        [{ 'If-Match': etag, 'If-Unmodified-Since': new Date(Date.UTC(1990, 0, 1)).toUTCString() }, 200], // If-Match decides
      ];
      for (const [headers, status] of cases) {
        for (const method of ['GET', 'HEAD']) {
          const res = await get(blobPath(), headers, method);
          assert.equal(res.status, status, `${method} ${JSON.stringify(headers)}`);
          if (status === 412 && method === 'GET') assert.equal(errorCode(res), 'UNKNOWN', JSON.stringify(headers));
        }
      }
      const manifest = await get(`/v2/${target().image.name.toLowerCase()}/manifests/${target().image.manifest}`, { 'If-Match': '"sha256:nope"' });
      assert.equal(manifest.status, 412, 'a manifest too');
    });

    test('a single range starting at the end, or past it, with a last byte: 416 naming the size', async () => {
      const size = target().layer.length;
      for (const header of [`bytes=${size}-${size + 5}`, `bytes=${size}-`, `bytes=${size + 1}-${size + 1}`, `bytes=${size}-9007199254740991`]) {
        const res = await get(blobPath(), { Range: header });
        assert.equal(res.status, 416, header);
        assert.equal(res.headers['content-range'], `bytes */${size}`, header);
        assert.equal(errorCode(res), 'RANGE_INVALID', header);
      }
    });
  });

  describe('several ranges (the stargz snapshotter asks for several chunks at once)', () => {
    test('generated Range headers: 206, multipart/byteranges or 416 exactly as the byte model says', async () => {
      const layer = target().layer;
      for (let seed = 1; seed <= 150; seed++) {
        const specs = generatedSpecs(seed, layer.length);
        const header = rangeHeader(specs, seed);
        assertRangeAnswer(await get(blobPath(), { Range: header }), layer, expectedRuns(specs, layer.length), `seed ${seed}: ${header.slice(0, 200)}`);
      }
    });

    test('unsatisfiable parts dropped: bytes=0-1,999999999999- is the first two bytes', async () => {
      const res = await get(blobPath(), { Range: 'bytes=0-1,999999999999-' });
      assert.equal(res.status, 206);
      assert.equal(res.headers['content-range'], `bytes 0-1/${target().layer.length}`);
      assert.ok(res.body.equals(target().layer.subarray(0, 2)));
    });

    test('overlapping and adjacent ranges are merged; a HEAD gets the same headers and no body', async () => {
      const header = { Range: 'bytes=10-19,0-4,5-9,100-199,150-250' };
      const res = await get(blobPath(), header);
      assertRangeAnswer(res, target().layer, [[0, 19], [100, 250]], 'merged');
      const head = await get(blobPath(), header, 'HEAD');
      assert.equal(head.status, 206);
      assert.equal(head.headers['content-length'], res.headers['content-length']);
      assert.match(String(head.headers['content-type']), /^multipart\/byteranges; boundary=/);
      assert.equal(head.body.length, 0);
    });

    test('If-Range that does not match: the whole blob, even for several ranges', async () => {
      const res = await get(blobPath(), { Range: 'bytes=0-1,10-11', 'If-Range': '"sha256:0000"' });
      assert.equal(res.status, 200);
      assert.ok(res.body.equals(target().layer));
    });

    test('a multipart answer with large parts streams (parts bigger than one read)', async () => {
      const layer = target().layer;
      const half = Math.floor(layer.length / 2);
      const res = await get(blobPath(), { Range: `bytes=0-${half - 10},${half + 10}-` });
      assertRangeAnswer(res, layer, [[0, half - 10], [half + 10, layer.length - 1]], 'large parts');
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
      ...(options.dotSegments === false ? [] : DOT_SEGMENT_CASES),
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
        const res = await raw(target().url, p, { method, body: method === 'GET' ? undefined : '{}' });
        assert.equal(res.status, status);
        assert.equal(errorCode(res), code);
        assert.match(String(res.headers['content-type']), /^application\/json/);
        if (status === 405) assert.equal(res.headers.allow, 'GET, HEAD');
        // still serving
        const ok = await get(`/v2/${target().image.name}/manifests/v1`, {}, 'HEAD');
        assert.equal(ok.status, 200);
      });
    }

    test('HEAD errors carry the status and no body', async () => {
      const res = await get(`/v2/test-org/tiny-model/blobs/${zero}`, {}, 'HEAD');
      assert.equal(res.status, 404);
      assert.equal(res.body.length, 0);
    });
  });
}
