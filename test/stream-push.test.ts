// `depot-ai build NAME --push` streaming from the Hub stand-in into the CNCF registry (through a
// proxy that counts requests and injects faults): the same digests as `build --from`, nothing
// left on disk, and the faults of issue 11: a Hub connection cut mid-file, a PATCH cut
// mid-chunk, an LFS file whose bytes do not match, a registry without chunked uploads, and a
// rerun after a failure that does not stream the layer again.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { safetensors } from '../examples/safetensors.ts';
import { CLI, depotAi, ROOT } from './helpers/cli.ts';
import { verifyStoredImage } from './helpers/estargz.ts';
import { generatedFile, sha256, startHubServer, type HubServer } from './helpers/hub-server.ts';
import { modelDir, pseudoRandomBytes, tempDir } from './helpers/models.ts';
import { startRecordingProxy, type RecordingProxy } from './helpers/proxy.ts';
import { imageDigests, runTool, startCncfRegistry, tool, type CncfRegistry } from './helpers/registry.ts';

for (const file of ['/usr/bin/docker-registry', '/usr/bin/skopeo']) tool(file);

const MiB = 1 << 20;
const WEIGHTS = safetensors({ 'w.weight': [3 * 1024, 1024] }, 4); // 6 MiB of fp16
const FILES = {
  'config.json': JSON.stringify({ model_type: 'llama', hidden_size: 64 }),
  'model.safetensors': WEIGHTS,
  'extra/blob.bin': pseudoRandomBytes(2 * MiB + 5, 3),
  'tokenizer.json': JSON.stringify({ vocab: Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`t${i}`, i])) }),
};
/** Bigger than the tests' 4 MiB window, served slowly: still downloading when the signal comes. */
const SLOW = generatedFile(16 * MiB, (start, end) => Buffer.from(Array.from({ length: end - start }, (_, i) => Math.imul(start + i, 2654435761) >>> 24)));

describe('build --push streams into the CNCF registry', () => {
  let hub: HubServer;
  let cncf: CncfRegistry;
  let proxy: RecordingProxy;
  let catalog: string;
  let local: Awaited<ReturnType<typeof imageDigests>>;

  before(async () => {
    hub = await startHubServer({
      repos: [
        { name: 'Stream/Model', commits: [{ files: FILES }] },
        { name: 'Stream/Tampered', commits: [{ files: FILES }], tamper: { 'extra/blob.bin': pseudoRandomBytes(2 * MiB + 5, 4) } },
        { name: 'Stream/Slow', commits: [{ files: { 'config.json': '{}', 'model.safetensors': SLOW } }] },
      ],
    });
    cncf = await startCncfRegistry();
    proxy = await startRecordingProxy(cncf.url);
    catalog = path.join(tempDir('depot-stream-catalog-'), 'models.yaml');
    writeFileSync(catalog, `models:\n  - name: Stream/Model\n    sha: ${hub.head('Stream/Model')}\n  - name: Stream/Tampered\n    sha: ${hub.head('Stream/Tampered')}\n  - name: Stream/Slow\n    sha: ${hub.head('Stream/Slow')}\n`);
    const store = tempDir('depot-stream-local-');
    const built = await depotAi(['build', 'Stream/Model', '--from', modelDir(FILES), '--store', store, '--sha', hub.head('Stream/Model')], { SOURCE_DATE_EPOCH: '0' });
    assert.equal(built.status, 0, built.stderr);
    local = await imageDigests(store, 'stream/model', 'latest');
  });
  after(async () => {
    await proxy?.close();
    await cncf?.stop();
    await hub?.close();
  });

  /** The command line and environment streaming `name` into `prefix` on the proxy, with TMPDIR `tmp`. */
  const pushCommand = (name: string, prefix: string, tmp: string, env: NodeJS.ProcessEnv) => ({
    args: ['build', name, '--catalog', catalog, '--push', `${proxy.hostPort}/${prefix}`, '--insecure', '--upload-chunk', '1M', '--window', '4M'],
    env: {
      HF_ENDPOINT: hub.url,
      HF_TOKEN: '',
      DEPOT_CACHE: tempDir('depot-stream-cache-'),
      DEPOT_STORE: path.join(tmp, 'store'),
      DEPOT_RETRY_DELAY_MS: '20',
      SOURCE_DATE_EPOCH: '0',
      TMPDIR: tmp,
      ...env,
    },
  });

  /** Streams `name` into `prefix` on the proxy; TMPDIR is a fresh folder the test can look into. */
  const push = (name: string, prefix: string, env: NodeJS.ProcessEnv = {}) => {
    const tmp = tempDir('depot-stream-tmp-');
    const { args, env: all } = pushCommand(name, prefix, tmp, env);
    return depotAi(args, all).then((result) => ({ ...result, tmp }));
  };

  /** Resolves once `ready()` holds (polled), or rejects after `ms`. */
  const until = async (ready: () => boolean, what: string, ms = 30_000) => {
    for (const deadline = Date.now() + ms; !ready(); await new Promise((r) => setTimeout(r, 25))) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    }
  };

  /** The image at `ref` copied back by skopeo: its digests, checked by the reference reader. */
  async function copyBack(ref: string) {
    const out = tempDir('depot-stream-copy-');
    await runTool('/usr/bin/skopeo', ['copy', '--all', '--preserve-digests', '--src-tls-verify=false', `docker://${cncf.hostPort}/${ref}`, `oci:${path.join(out, 'x')}:latest`]);
    await verifyStoredImage(out, 'x', 'latest');
    return imageDigests(out, 'x', 'latest');
  }

  /** What the run left in its TMPDIR (tsx's compile cache aside). */
  const leftIn = (dir: string) => readdirSync(dir).filter((name) => !name.startsWith('tsx-'));

  const uploads = (prefix: string, method: string) => proxy.requests.filter((r) => r.method === method && r.url.startsWith(`/v2/${prefix}/`)).length;

  test('the same layer and index as build --from, with a Hub connection cut mid-file resumed; nothing left on disk', async () => {
    hub.faults.push({ match: sha256(WEIGHTS), cutAfter: 2 * MiB + 100 });
    const run = await push('Stream/Model', 'plain');
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /^stream\/model\s+sha256:[0-9a-f]{12}\s+.*built, pushed$/m);
    assert.ok(hub.requests.some((r) => r.origin === 'storage' && r.url.includes(sha256(WEIGHTS)) && /^bytes=[1-9]\d*-/.test(r.range ?? '')), 'the cut download resumed from its offset');
    assert.ok(uploads('plain', 'PATCH') >= 5, 'the layer went up in 1 MiB PATCHes');
    assert.deepEqual(await copyBack('plain/stream/model:latest'), local);
    assert.deepEqual(leftIn(run.tmp), [], 'no store copy, no spool, no staging left');
  });

  test('a Hub connection that stalls mid-file is dropped after the idle bound and resumed from its offset', async () => {
    let release!: () => void;
    const stalled = new Promise<void>((resolve) => (release = resolve));
    hub.faults.push({ match: sha256(WEIGHTS), cutAfter: 100_000, cutWhen: () => stalled });
    const before = hub.count();
    const run = await push('Stream/Model', 'stall', { DEPOT_HUB_IDLE_TIMEOUT_MS: '300' });
    release();
    assert.equal(run.status, 0, run.stderr);
    const [first, ...later] = hub.requests.slice(before).filter((r) => r.origin === 'storage' && r.url.includes(sha256(WEIGHTS)));
    const [, start, end] = /^bytes=(\d+)-(\d+)$/.exec(first.range ?? '')!;
    assert.ok(later.some((r) => r.range === `bytes=${Number(start) + 100_000}-${end}`), `the stalled download resumed from the byte it reached (${first.range})`);
    assert.deepEqual(leftIn(run.tmp), []);
  });

  test('a PATCH cut mid-chunk: the upload goes on (resumed, or re-streamed when the registry drops the session) to the same digests', async (t) => {
    proxy.faults.push({ method: 'PATCH', cutAfter: 300_000, times: 1 });
    const run = await push('Stream/Model', 'cut');
    proxy.faults.length = 0;
    assert.equal(run.status, 0, run.stderr);
    assert.ok(proxy.requests.some((r) => r.method === 'GET' && r.url.startsWith('/v2/cut/stream/model/blobs/uploads/')), 'asked where the cut upload stood');
    assert.deepEqual(await copyBack('cut/stream/model:latest'), local);
    t.diagnostic(`layer upload sessions started: ${proxy.requests.filter((r) => r.method === 'POST' && r.url.startsWith('/v2/cut/stream/model/blobs/uploads/')).length} (more than 3: the registry dropped the cut session and the layer was re-streamed)`);
  });

  test('an LFS file whose bytes do not match: one line, the upload session DELETEd, no manifest, no tag', async () => {
    const run = await push('Stream/Tampered', 'bad');
    assert.equal(run.status, 1);
    assert.match(run.stderr, /^depot-ai: Stream\/Tampered: .*extra\/blob\.bin.*sha256/m);
    assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
    assert.ok(uploads('bad', 'POST') >= 1 && uploads('bad', 'DELETE') >= 1, 'the started session was cancelled');
    assert.ok(proxy.requests.every((r) => !(r.url.startsWith('/v2/bad/') && r.url.includes('/manifests/') && r.method === 'PUT')), 'no manifest pushed');
    assert.equal((await fetch(`${cncf.url}/v2/bad/stream/tampered/manifests/latest`)).status, 404);
    assert.deepEqual(leftIn(run.tmp), [], 'the spool is removed');
  });

  test('a registry that refuses PATCH: said once with the disk needed, the layer staged and PUT whole, same digests', async () => {
    proxy.faults.push({ method: 'PATCH', status: 405, times: Infinity });
    const run = await push('Stream/Model', 'whole');
    proxy.faults.length = 0;
    assert.equal(run.status, 0, run.stderr);
    const said = run.stderr.split('\n').filter((line) => line.includes('refuses chunked uploads'));
    assert.equal(said.length, 1, run.stderr);
    assert.match(said[0], /^depot-ai: 127\.0\.0\.1:\d+ refuses chunked uploads \(PATCH answered 405\): staging the layer in .+ \(needs up to [\d.]+ MiB of disk/);
    assert.match(run.stdout, /built, pushed whole \(staged\)$/m);
    assert.ok(proxy.requests.some((r) => r.method === 'PUT' && r.url.startsWith('/v2/whole/') && r.url.includes(encodeURIComponent(local.layer))), 'the layer went up in one PUT');
    assert.deepEqual(await copyBack('whole/stream/model:latest'), local);
    assert.deepEqual(leftIn(run.tmp), [], 'the staged layer is removed');
  });

  test('a rerun after a failed manifest push does not stream the layer again', async () => {
    const cache = tempDir('depot-stream-cache-');
    proxy.faults.push({ method: 'PUT', urlIncludes: '/manifests/', status: 400, times: 1 });
    const failed = await push('Stream/Model', 'rerun', { DEPOT_CACHE: cache });
    proxy.faults.length = 0;
    assert.equal(failed.status, 1);
    assert.equal((await fetch(`${cncf.url}/v2/rerun/stream/model/manifests/latest`)).status, 404, 'not tagged');
    const patches = uploads('rerun', 'PATCH');
    const storage = hub.count((r) => r.origin === 'storage');
    const again = await push('Stream/Model', 'rerun', { DEPOT_CACHE: cache });
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /pushed \(layer already there\)$/m);
    assert.equal(uploads('rerun', 'PATCH'), patches, 'no PATCH the second time');
    assert.equal(hub.count((r) => r.origin === 'storage'), storage, 'nothing downloaded the second time');
    assert.deepEqual(await copyBack('rerun/stream/model:latest'), local);
  });

  // The streamed layer is written with the same options as build's: generated epochs and prefetch rules.
  for (const [i, [epoch, prefetch]] of ([['1700000000', undefined], ['0', 'small'], ['86400', '*.json']] as const).entries()) {
    test(`SOURCE_DATE_EPOCH=${epoch}${prefetch ? `, --prefetch ${prefetch}` : ''}: the same digests as build --from, and the revision tag`, async () => {
      const extra = prefetch ? ['--prefetch', prefetch] : [];
      const store = tempDir('depot-stream-local-');
      const sha = hub.head('Stream/Model');
      const built = await depotAi(['build', 'Stream/Model', '--from', modelDir(FILES), '--store', store, '--sha', sha, ...extra], { SOURCE_DATE_EPOCH: epoch });
      assert.equal(built.status, 0, built.stderr);
      const want = await imageDigests(store, 'stream/model', 'latest');
      assert.notEqual(want.index, local.index, 'the options change the image');
      const prefix = `opts-${i}`;
      const tmp = tempDir('depot-stream-tmp-');
      const run = await depotAi(['build', 'Stream/Model', '--catalog', catalog, '--push', `${proxy.hostPort}/${prefix}`, '--insecure', ...extra], {
        HF_ENDPOINT: hub.url,
        HF_TOKEN: '',
        DEPOT_CACHE: tempDir('depot-stream-cache-'),
        SOURCE_DATE_EPOCH: epoch,
        TMPDIR: tmp,
      });
      assert.equal(run.status, 0, run.stderr);
      assert.deepEqual(await copyBack(`${prefix}/stream/model:latest`), want);
      const revision = await fetch(`${cncf.url}/v2/${prefix}/stream/model/manifests/${sha}`, { method: 'HEAD', headers: { Accept: 'application/vnd.oci.image.index.v1+json' } });
      assert.equal(revision.headers.get('docker-content-digest'), want.index, 'the revision tag points at the index');
    });
  }

  test('a rerun with another SOURCE_DATE_EPOCH or --prefetch is not "up to date": it is built, and the revision tag refuses the other image', async () => {
    assert.equal((await push('Stream/Model', 'rerun-opts')).status, 0);
    for (const [args, env] of [[[], { SOURCE_DATE_EPOCH: '86400' }], [['--prefetch', '*.json'], {}]] as const) {
      const tmp = tempDir('depot-stream-tmp-');
      const { args: base, env: all } = pushCommand('Stream/Model', 'rerun-opts', tmp, env);
      const run = await depotAi([...base, ...args], all);
      assert.doesNotMatch(run.stdout, /is up to date/, run.stdout);
      assert.match(run.stderr, /not checking whether rerun-opts\/stream\/model:latest is up to date: SOURCE_DATE_EPOCH or --prefetch change the image/);
      assert.notEqual(run.status, 0, `${run.stdout}${run.stderr}`);
    }
  });

  test('a Hub file listing that stalls is dropped after the idle bound and listed again', async () => {
    let release!: () => void;
    const stalled = new Promise<void>((resolve) => (release = resolve));
    hub.faults.push({ match: '/tree/', cutAfter: 0, cutWhen: () => stalled });
    const run = await push('Stream/Model', 'stalltree', { DEPOT_HUB_IDLE_TIMEOUT_MS: '300' });
    release();
    assert.equal(run.status, 0, run.stderr);
    assert.ok(hub.count((r) => r.url.includes('/tree/')) >= 2, 'listed again');
  });

  test('SIGTERM while the Hub file listing stalls: one line, exit 143 at once, nothing tagged', async () => {
    let release!: () => void;
    const stalled = new Promise<void>((resolve) => (release = resolve));
    hub.faults.push({ match: '/tree/', cutAfter: 0, cutWhen: () => stalled, times: 100 });
    const tmp = tempDir('depot-stream-tmp-');
    const { args, env } = pushCommand('Stream/Model', 'sigtree', tmp, { DEPOT_HUB_IDLE_TIMEOUT_MS: '600000' });
    const before = hub.count((r) => r.url.includes('/tree/'));
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (status) => resolve(status)));
    try {
      await until(() => hub.count((r) => r.url.includes('/tree/')) > before, 'the listing');
      child.kill('SIGTERM');
      // The listing waits for 10 minutes: an exit before the deadline is the signal's doing.
      const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running 20 s after SIGTERM'), 20_000))]);
      assert.equal(code, 143, stderr);
    } finally {
      release();
      hub.faults.length = 0;
      child.kill('SIGKILL');
    }
    const lines = stderr.split(/[\r\n]/).filter((line) => line.startsWith('depot-ai:'));
    assert.equal(lines.length, 1, stderr);
    assert.match(lines[0], /^depot-ai: SIGTERM: stopping/);
    assert.deepEqual(leftIn(tmp), [], 'nothing left');
    assert.equal((await fetch(`${cncf.url}/v2/sigtree/stream/model/manifests/latest`)).status, 404, 'nothing tagged');
  });

  for (const [signal, code] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
    test(`${signal} while streaming: one line, exit ${code}, the spool removed, the upload session DELETEd, nothing tagged`, async () => {
      hub.bytesPerSecond = 512 * 1024; // per connection: the 16 MiB file takes seconds
      const tmp = tempDir('depot-stream-tmp-');
      const prefix = `sig-${code}`;
      const { args, env } = pushCommand('Stream/Slow', prefix, tmp, {});
      const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (status) => resolve(status)));
      try {
        const spooling = () => leftIn(tmp).some((name) => name.startsWith('depot-window-'));
        await until(() => uploads(prefix, 'POST') >= 1 && spooling() && hub.count((r) => r.origin === 'storage' && r.url.includes(SLOW.sha256)) > 0, 'the download and the upload session');
        child.kill(signal);
        assert.equal(await exited, code, stderr);
      } finally {
        hub.bytesPerSecond = undefined;
        child.kill('SIGKILL');
      }
      const lines = stderr.split(/[\r\n]/).filter((line) => line.startsWith('depot-ai:'));
      assert.deepEqual(lines.length, 1, stderr);
      assert.match(lines[0], new RegExp(`^depot-ai: ${signal}: stopping`));
      assert.deepEqual(leftIn(tmp), [], 'no spool left');
      assert.ok(uploads(prefix, 'DELETE') >= 1, 'the upload session was cancelled');
      assert.equal((await fetch(`${cncf.url}/v2/${prefix}/stream/slow/manifests/latest`)).status, 404, 'nothing tagged');
    });
  }

  test('SOURCE_DATE_EPOCH past the latest tar mtime is one clear line; the latest itself builds', async () => {
    const dir = modelDir({ 'config.json': '{}' });
    for (const epoch of [String(8 ** 11), '99999999999999999999']) {
      const run = await depotAi(['build', 'Epoch/Model', '--from', dir, '--store', tempDir('depot-stream-local-')], { SOURCE_DATE_EPOCH: epoch });
      assert.equal(run.status, 2, run.stderr);
      assert.equal(run.stderr, `depot-ai: SOURCE_DATE_EPOCH must be at most ${8 ** 11 - 1} (2242-03-16T12:56:31Z, the latest mtime a tar header holds), not ${epoch}\n`);
    }
    const store = tempDir('depot-stream-local-');
    const latest = await depotAi(['build', 'Epoch/Model', '--from', dir, '--store', store], { SOURCE_DATE_EPOCH: String(8 ** 11 - 1) });
    assert.equal(latest.status, 0, latest.stderr);
    await verifyStoredImage(store, 'epoch/model', 'latest');
  });

  test('a bad --window, or an --upload-chunk below 256 KiB, is one clear line', async () => {
    const run = await depotAi(['build', 'Stream/Model', '--catalog', catalog, '--push', proxy.hostPort, '--insecure', '--window', 'lots']);
    assert.equal(run.status, 2);
    assert.match(run.stderr, /--window must be a size in bytes such as 1073741824, 512M or 1G, not "lots"/);
    for (const [args, env] of [[['--upload-chunk', '1'], {}], [[], { DEPOT_UPLOAD_CHUNK_BYTES: '255K' }]] as const) {
      const tiny = await depotAi(['build', 'Stream/Model', '--catalog', catalog, '--push', proxy.hostPort, '--insecure', ...args], env);
      assert.equal(tiny.status, 2, tiny.stderr);
      assert.equal(tiny.stderr.trim().split('\n').length, 1, tiny.stderr);
      assert.match(tiny.stderr, /--upload-chunk \(DEPOT_UPLOAD_CHUNK_BYTES\) must be at least 256K, not (1|255K)/);
    }
  });
});
