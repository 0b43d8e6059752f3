// Pushing to the CNCF registry (Debian docker-registry) through a proxy that counts requests and
// can drop uploads: skopeo reads back identical digests, buildah builds from the pushed image,
// re-runs upload nothing, a cut upload resumes, a dead link leaves no tag, and a refusing
// registry is one clear line.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ImageLayout } from '../image/layout.ts';
import { sha256Digest } from '../image/oci.ts';
import { parsePushTarget, Pusher } from '../client/push.ts';
import { assertBuildahCopies } from './helpers/buildah.ts';
import { buildAndPush } from './helpers/publish.ts';
import { startRecordingProxy, type RecordingProxy } from './helpers/proxy.ts';
import { buildImage, freePort, imageDigests, runTool, startCncfRegistry, tempDir, tool, writeModelFolder, type CncfRegistry } from './helpers/registry.ts';

for (const file of ['/usr/bin/docker-registry', '/usr/bin/skopeo', '/usr/bin/buildah']) tool(file);
const skopeo = (...args: string[]) => runTool('/usr/bin/skopeo', args);

describe('pushing to the CNCF registry', () => {
  let cncf: CncfRegistry;
  let proxy: RecordingProxy;
  let src: string;
  let files: Record<string, Buffer>;
  const store = tempDir('push-store');
  store.catch(() => {});

  before(async () => {
    cncf = await startCncfRegistry();
    proxy = await startRecordingProxy(cncf.url);
    src = await tempDir('push-src');
    files = await writeModelFolder(src, 'push', 3 * 1024 * 1024);
  });
  after(async () => {
    await proxy?.close();
    await cncf?.stop();
  });

  test('build --push: skopeo inspect and copy give back the same digests', async () => {
    const run = await buildAndPush('Push-Org/Model', src, await store, proxy.hostPort);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /pushed 127\.0\.0\.1:\d+\/push-org\/model:latest \(sha256:[0-9a-f]{64}\): 3 uploaded, 0 present, 0 mounted/, 'the layer and two platform configs');
    assert.match(run.stdout, /^push-org\/model\s+sha256:[0-9a-f]{12}\s+.*built, pushed$/m);
    assert.ok(proxy.count('PATCH') >= 3, 'the layer went up in several chunks');

    const local = await imageDigests(await store, 'push-org/model', 'latest');
    const { stdout: raw } = await skopeo('inspect', '--raw', '--tls-verify=false', `docker://${cncf.hostPort}/push-org/model:latest`);
    assert.equal(sha256Digest(raw), local.index);
    const out = await tempDir('push-copy');
    await skopeo('copy', '--all', '--preserve-digests', '--src-tls-verify=false', `docker://${cncf.hostPort}/push-org/model:latest`, `oci:${path.join(out, 'x')}:latest`);
    assert.deepEqual(await imageDigests(out, 'x', 'latest'), local);
  });

  test('buildah: FROM scratch + COPY --from=<pushed image> / . and one file: byte-identical', { timeout: 300_000 }, async () => {
    await assertBuildahCopies(cncf.hostPort, `${cncf.hostPort}/push-org/model:latest`, files, 'model.safetensors');
  });

  test('a re-run sends nothing: the tag already points at the same index', async () => {
    const started = proxy.requests.length;
    const run = await buildAndPush('Push-Org/Model', src, await store, proxy.hostPort);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /already there/);
    const sent = proxy.requests.slice(started).filter((r) => r.method !== 'GET' && r.method !== 'HEAD');
    assert.deepEqual(sent, [], 'no uploads, no manifests');
  });

  test('another repository with the same layer mounts it instead of uploading', async () => {
    const other = await tempDir('push-store');
    await buildImage('Push-Org/Copy', src, other, 'latest');
    await buildImage('Push-Org/Model', src, other, 'latest');
    const pusher = await Pusher.connect(parsePushTarget(`${proxy.hostPort}/mirror`), { insecure: true });
    const first = await pusher.push(new ImageLayout(other, 'push-org/model'), 'latest');
    assert.equal(first.blobsUploaded, 3);
    const patches = proxy.count('PATCH');
    const second = await pusher.push(new ImageLayout(other, 'push-org/copy'), 'latest');
    assert.equal(second.blobsMounted, 1, 'the layer was mounted from mirror/push-org/model');
    assert.equal(proxy.count('POST', 'mount='), 1);
    assert.ok(proxy.count('PATCH') - patches <= 2, 'only the small configs were uploaded');
  });

  test('a connection dropped mid-upload is resumed, and a re-run uploads no blob twice', async () => {
    const flaky = await tempDir('push-store');
    proxy.faults.push({ method: 'PATCH', cutAfter: 512 * 1024, times: 2 });
    const statusChecks = proxy.count('GET', '/blobs/uploads/');
    const run = await buildAndPush('Push-Org/Flaky', src, flaky, proxy.hostPort);
    assert.equal(run.status, 0, run.stderr);
    assert.ok(proxy.count('GET', '/blobs/uploads/') - statusChecks >= 2, 'asked the registry where each cut upload stood');
    const local = await imageDigests(flaky, 'push-org/flaky', 'latest');
    const { stdout: raw } = await skopeo('inspect', '--raw', '--tls-verify=false', `docker://${cncf.hostPort}/push-org/flaky:latest`);
    assert.equal(JSON.parse(raw).manifests.length, 2);
    const again = await buildAndPush('Push-Org/Flaky', src, flaky, proxy.hostPort);
    assert.equal(again.status, 0, again.stderr);
    for (const digest of [local.layer, local.config]) {
      const finished = proxy.requests.filter((r) => r.method === 'PUT' && r.url.startsWith('/v2/push-org/flaky/') && r.url.includes(`digest=${encodeURIComponent(digest)}`));
      assert.equal(finished.length, 1, `${digest} finished once`);
    }
    const out = await tempDir('push-copy');
    await skopeo('copy', '--all', '--preserve-digests', '--src-tls-verify=false', `docker://${cncf.hostPort}/push-org/flaky:latest`, `oci:${path.join(out, 'x')}:latest`);
    assert.deepEqual(await imageDigests(out, 'x', 'latest'), local);
  });

  test('a dead link fails with one clear line and leaves no tag', async () => {
    proxy.faults.push({ method: 'PATCH', cutAfter: 1000, times: Infinity });
    const run = await buildAndPush('Push-Org/Dead', src, await tempDir('push-store'), proxy.hostPort, { DEPOT_RETRY_DELAY_MS: '1' });
    proxy.faults.length = 0;
    assert.equal(run.status, 1);
    assert.match(run.stderr, /^depot-ai: Push-Org\/Dead: cannot reach 127\.0\.0\.1:\d+: .+$/m);
    assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
    assert.equal((await fetch(`${cncf.url}/v2/push-org/dead/manifests/latest`)).status, 404, 'no tag');
  });

  test('a registry that refuses connections: one clear line, non-zero exit', async () => {
    const run = await buildAndPush('Push-Org/Model', src, await store, `127.0.0.1:${await freePort()}`);
    assert.equal(run.status, 1);
    assert.match(run.stderr, /^depot-ai: Push-Org\/Model: cannot reach 127\.0\.0\.1:\d+: connect ECONNREFUSED/m);
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
  });
});
