// Load: many concurrent range and manifest requests (autocannon, bounded, 127.0.0.1 only)
// with zero errors, and every range answer the right length.
import assert from 'node:assert/strict';
import autocannon from 'autocannon';
import { after, before, test } from 'node:test';
import { eventually, makeTestImage, startTestRegistry, type TestImage, type TestRegistry } from './helpers/registry.ts';

let image: TestImage;
let registry: TestRegistry;

before(async () => {
  image = await makeTestImage({ name: 'Load/Model', tag: 'v1', weights: 8 * 1024 * 1024 });
  registry = await startTestRegistry({ store: image.store });
});
after(async () => {
  await registry?.close();
});

test('20k mixed range and manifest requests on 64 connections: zero errors, all 2xx', { timeout: 120_000 }, async () => {
  const accept = 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json';
  const blob = `/v2/${image.name}/blobs/${image.layer}`;
  const requests: autocannon.Request[] = [
    { method: 'GET', path: `/v2/${image.name}/manifests/${image.tag}`, headers: { accept } },
    { method: 'GET', path: `/v2/${image.name}/tags/list` },
    { method: 'GET', path: `/v2/${image.name}/manifests/${image.manifest}`, headers: { accept } },
    { method: 'GET', path: `/v2/${image.name}/blobs/${image.config}` },
    // (autocannon waits for a body after HEAD, so HEAD is left to the other tests)
  ];
  for (let i = 0; i < 8; i++) {
    const start = Math.floor((image.layerSize - 4096) * (i / 8));
    requests.push({ method: 'GET', path: blob, headers: { range: `bytes=${start}-${start + 4095}` } });
  }
  requests.push({ method: 'GET', path: blob, headers: { range: 'bytes=-4096' } });
  requests.push({ method: 'GET', path: blob, headers: { range: 'bytes=0-262143' } });
  requests.push({ method: 'GET', path: blob, headers: { range: 'bytes=1000-300000' } });

  const result = await autocannon({
    url: registry.url,
    connections: 64,
    amount: 20_000,
    timeout: 20,
    requests,
  });
  assert.equal(result.errors, 0, 'connection errors');
  assert.equal(result.timeouts, 0, 'timeouts');
  assert.equal(result.non2xx, 0, 'non-2xx answers');
  assert.ok(result['2xx'] >= 20_000, `only ${result['2xx']} answers`);
  // The server keeps answering correctly afterwards, and logged every request.
  const res = await fetch(`${registry.url}${blob}`, { headers: { range: 'bytes=0-4095' } });
  assert.equal(res.status, 206);
  assert.equal((await res.arrayBuffer()).byteLength, 4096);
  await eventually(() => registry.lines.length >= 20_000, 'a log line per request');
  console.log(`# load: ${result.requests.average} req/s average, p99 ${result.latency.p99} ms`);
});
