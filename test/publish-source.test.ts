// The Hugging Face source, driven through the real @huggingface/hub client against the local Hub
// stand-in: builds at the pinned sha (every tree page, redirects to the storage host), verifies
// every file, caches by content hash (a re-run downloads nothing), resumes cut downloads, keeps the
// token away from the storage host, and fails cleanly on corrupt bytes, unknown names and bad tokens.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildImage } from '../builder/build.ts';
import { ImageLayout } from '../image/layout.ts';
import { FolderSource } from '../sources/folder.ts';
import { depotAiAsync } from './helpers/cli.ts';
import { verifyStoredImage } from './helpers/estargz.ts';
import { sha256, startHubServer, type HubServer } from './helpers/hub-server.ts';
import { modelDir, pseudoRandomBytes, tempDir } from './helpers/models.ts';
import { eventually, startCncfRegistry } from './helpers/registry.ts';

const FILES = {
  'config.json': '{"model_type":"tiny"}',
  'tokenizer/vocab.txt': 'a\nb\nc\n',
  'nested/deeper/notes.md': '# notes\n',
  'model.safetensors': pseudoRandomBytes(5 * 1024 * 1024 + 123, 7),
  'small.bin': pseudoRandomBytes(1000, 8),
  '.gitattributes': '*.safetensors filter=lfs\n',
};

// The corrupt repository's real weights differ from the good one's, so the content cache cannot serve them.
const CORRUPT_FILES = { ...FILES, 'model.safetensors': pseudoRandomBytes(5 * 1024 * 1024 + 123, 11) };

describe('building from Hugging Face', () => {
  let hub: HubServer;
  let catalog: string;
  const cache = tempDir('depot-hf-cache-');
  const env = () => ({ HF_ENDPOINT: hub.url, HF_TOKEN: '', DEPOT_CACHE: cache, DEPOT_RETRY_DELAY_MS: '20', SOURCE_DATE_EPOCH: '0' });
  const build = (names: string[], store: string, extra: NodeJS.ProcessEnv = {}) => depotAiAsync(['build', ...names, '--store', store, '--catalog', catalog], { ...env(), ...extra });
  const resolves = (r: { url: string; origin: string }) => r.origin === 'storage' || r.url.includes('/resolve/');

  before(async () => {
    hub = await startHubServer({
      repos: [
        { name: 'Test-Org/Good-Model', commits: [{ files: { 'old.txt': 'old' } }, { files: FILES }, { files: { 'config.json': '{"moved":"on"}' } }] },
        { name: 'Test-Org/Corrupt-Model', commits: [{ files: CORRUPT_FILES }], tamper: { 'model.safetensors': pseudoRandomBytes(5 * 1024 * 1024 + 123, 9) } },
        { name: 'Test-Org/Private-Model', private: true, commits: [{ files: { 'config.json': '{}', 'weights.bin': pseudoRandomBytes(200_000, 3) } }] },
      ],
    });
    const sha = (name: string, i: number) => hub.shas(name)[i];
    catalog = path.join(tempDir('depot-hf-catalog-'), 'models.yaml');
    writeFileSync(
      catalog,
      `models:\n` +
        `  - name: Test-Org/Good-Model\n    sha: ${sha('Test-Org/Good-Model', 1)}\n    tag: v1\n` +
        `  - name: Test-Org/Corrupt-Model\n    sha: ${sha('Test-Org/Corrupt-Model', 0)}\n` +
        `  - name: Test-Org/Private-Model\n    sha: ${sha('Test-Org/Private-Model', 0)}\n`,
    );
  });
  after(() => hub?.close());

  const shaOf = (name: string, i: number) => hub.shas(name)[i];

  test('a good repository builds at the pinned sha, identical to the same files from a folder, and passes the reference reader', async () => {
    const store = tempDir('depot-hf-store-');
    const run = await build(['Test-Org/Good-Model'], store);
    assert.equal(run.status, 0, run.stderr);
    const report = await verifyStoredImage(store, 'test-org/good-model', 'v1');
    assert.equal(report.files, Object.keys(FILES).length - 1 + 1, 'every file but .gitattributes, plus the landmark');

    const sha = shaOf('Test-Org/Good-Model', 1);
    const folder = modelDir(Object.fromEntries(Object.entries(FILES).filter(([p]) => p !== '.gitattributes')));
    const reference = await buildImage({ name: 'Test-Org/Good-Model', source: new FolderSource(folder), store: tempDir('depot-ref-'), tag: 'v1', sha });
    const built = await new ImageLayout(store, 'test-org/good-model').resolveTag('v1');
    assert.equal(built?.digest, reference.indexDigest, 'same files, same digest');

    const fetched = hub.requests.filter((r) => r.url.includes('/tree/') || r.url.includes('/resolve/'));
    assert.ok(fetched.every((r) => r.url.includes(sha)), 'every listing and download names the pinned sha, never main');
    assert.ok(hub.count((r) => r.url.includes('/tree/')) >= 3, 'the tree listing was paged');
    assert.ok(hub.count((r) => r.origin === 'storage') >= 1, 'LFS files came from the storage host');
  });

  test('a re-run downloads nothing it already has', async () => {
    const before = hub.count(resolves);
    const run = await build(['Test-Org/Good-Model'], tempDir('depot-hf-store-'));
    assert.equal(run.status, 0, run.stderr);
    assert.equal(hub.count(resolves), before, 'no download requests');
  });

  test('a download cut mid-way is resumed with a range request and verified', async () => {
    const freshCache = tempDir('depot-hf-cache-');
    // The reset comes once the client has the bytes sent in its partial file, so it must resume from there.
    const partial = path.join(freshCache, 'partial');
    const holdsSent = () => existsSync(partial) && readdirSync(partial).some((f) => statSync(path.join(partial, f)).size >= 1024 * 1024);
    const cutWhen = () => eventually(holdsSent, 'the partial download to hold the bytes sent');
    // Matched by content hash: a smaller LFS file fetched first must not use the fault up.
    const weights = sha256(FILES['model.safetensors']);
    hub.faults.push({ match: weights, when: (r) => !r.range, cutAfter: 1024 * 1024, cutWhen, times: 1 });
    const store = tempDir('depot-hf-store-');
    const started = hub.requests.length;
    const run = await build(['Test-Org/Good-Model'], store, { DEPOT_CACHE: freshCache });
    assert.equal(run.status, 0, run.stderr);
    const ranged = hub.requests.slice(started).filter((r) => r.origin === 'storage' && r.url.includes(weights) && /^bytes=[1-9]\d*-\d*$/.test(r.range ?? ''));
    assert.ok(ranged.length >= 1, 'resumed from an offset');
    await verifyStoredImage(store, 'test-org/good-model', 'v1');
  });

  test('a corrupted LFS file fails the build with one clear line and writes nothing', async () => {
    const store = tempDir('depot-hf-store-');
    const freshCache = tempDir('depot-hf-cache-');
    const run = await build(['Test-Org/Corrupt-Model'], store, { DEPOT_CACHE: freshCache });
    assert.equal(run.status, 1);
    assert.match(run.stderr, /^depot-ai: Test-Org\/Corrupt-Model: model\.safetensors: sha256 mismatch: expected [0-9a-f]{64}, got [0-9a-f]{64}$/m);
    assert.equal(existsSync(path.join(store, 'test-org')), false, 'no image in the store');
    assert.deepEqual(existsSync(path.join(store, '.tmp')) ? readdirSync(path.join(store, '.tmp')) : [], [], 'no temp files left');
    assert.deepEqual(readdirSync(path.join(freshCache, 'partial')).filter((f) => f.includes('sha256')), [], 'no partial download kept');
    assert.ok(!readdirSync(path.join(freshCache, 'sha256')).includes(sha256(CORRUPT_FILES['model.safetensors'])), 'nothing corrupt in the cache');
  });

  test('private repositories need HF_TOKEN, which never reaches the storage host', async () => {
    const store = tempDir('depot-hf-store-');
    const anonymous = await build(['Test-Org/Private-Model'], store);
    assert.equal(anonymous.status, 1);
    assert.match(anonymous.stderr, /private or gated; set HF_TOKEN/);
    const wrong = await build(['Test-Org/Private-Model'], store, { HF_TOKEN: 'hf_wrong' });
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr, /the Hub rejected HF_TOKEN/);
    const started = hub.requests.length;
    const run = await build(['Test-Org/Private-Model'], store, { HF_TOKEN: hub.token });
    assert.equal(run.status, 0, run.stderr);
    const seen = hub.requests.slice(started);
    assert.ok(seen.some((r) => r.origin === 'storage'), 'downloaded from storage');
    assert.ok(seen.filter((r) => r.origin === 'hub').every((r) => r.authorization === `Bearer ${hub.token}`), 'the Hub got the token');
    assert.ok(seen.filter((r) => r.origin === 'storage').every((r) => !r.authorization), 'the storage host never did');
  });

  test('--all builds every entry, reports each failure, and exits non-zero', async () => {
    const run = await depotAiAsync(['build', '--all', '--store', tempDir('depot-hf-store-'), '--catalog', catalog], { ...env(), DEPOT_CACHE: tempDir('depot-hf-cache-') });
    assert.equal(run.status, 1);
    assert.match(run.stdout, /^test-org\/good-model\s+sha256:\S+\s+.*built$/m);
    assert.match(run.stdout, /^test-org\/corrupt-model\s+-\s+-\s+.*failed: model\.safetensors: sha256 mismatch/m);
    assert.match(run.stdout, /^test-org\/private-model\s+-\s+-\s+.*failed: .*HF_TOKEN/m);
  });

  test('with --push, a model the registry already holds at the same revision is skipped before any download', async () => {
    const registry = await startCncfRegistry();
    try {
      const args = ['build', 'Test-Org/Good-Model', '--store', tempDir('depot-hf-store-'), '--catalog', catalog, '--push', registry.hostPort, '--insecure'];
      const first = await depotAiAsync(args, env());
      assert.equal(first.status, 0, first.stderr);
      assert.match(first.stdout, /built, pushed$/m);
      const downloads = hub.count(resolves);
      const again = await depotAiAsync([...args.slice(0, 3), tempDir('depot-hf-store-'), ...args.slice(4)], { ...env(), DEPOT_CACHE: tempDir('depot-hf-cache-') });
      assert.equal(again.status, 0, again.stderr);
      assert.match(again.stdout, /test-org\/good-model:v1 is up to date \(revision [0-9a-f]{40}, sha256:[0-9a-f]{64}\)/);
      assert.match(again.stdout, /^test-org\/good-model\s+sha256:\S+\s+-\s+.*up to date$/m);
      assert.equal(hub.count(resolves), downloads, 'nothing downloaded');
    } finally {
      await registry.stop();
    }
  });

  test('several names: an unknown one fails, the others still build, the table says which', async () => {
    const store = tempDir('depot-hf-store-');
    const run = await build(['no-such/model', 'Test-Org/Good-Model'], store);
    assert.equal(run.status, 1);
    assert.match(run.stderr, /^depot-ai: no-such\/model: "no-such\/model" is not in .*models\.yaml; without a catalog entry, build needs --from DIR$/m);
    assert.match(run.stdout, /^IMAGE\s+DIGEST\s+SIZE\s+TIME\s+RESULT$/m);
    assert.match(run.stdout, /^no-such\/model\s+-\s+-\s+[\d.]+ s\s+failed: /m);
    assert.match(run.stdout, /^test-org\/good-model\s+sha256:[0-9a-f]{12}\s+[\d.]+ MiB\s+[\d.]+ s\s+built$/m);
  });
});
