// Revision tags and `depot-ai verify`, against the Hub stand-in and the CNCF registry: a catalog
// update moves `latest` while the revision tags stay where they were, a build or push that would
// move a revision tag is refused with nothing changed, and verify rebuilds from the Hub at the
// revision label: identical for an honest image, a difference (naming the file) for images built
// from a source with one byte changed at generated positions.
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ImageLayout } from '../image/layout.ts';
import { parsePushTarget, Pusher } from '../client/push.ts';
import { makeImage } from '../builder/build.ts';
import { formatProblem, parseCatalog } from '../models/catalog.ts';
import { FolderSource } from '../sources/folder.ts';
import { depotAi } from './helpers/cli.ts';
import { startHubServer, type HubServer } from './helpers/hub-server.ts';
import { modelDir, pseudoRandomBytes, tempDir } from './helpers/models.ts';
import { runTool, startCncfRegistry, tool, type CncfRegistry } from './helpers/registry.ts';

for (const file of ['/usr/bin/docker-registry', '/usr/bin/skopeo']) tool(file);

const NAME = 'Trust-Org/Tiny-Model';
const INDEX = 'application/vnd.oci.image.index.v1+json';
const IMAGE = 'trust-org/tiny-model';
const FILES: Record<string, Buffer> = {
  'config.json': Buffer.from('{"model_type":"tiny","hidden":8}'),
  'tokenizer/vocab.txt': Buffer.from('a\nb\nc\nd\n'),
  'model.safetensors': pseudoRandomBytes(300 * 1024 + 17, 21),
};

describe('revision tags and depot-ai verify', () => {
  let hub: HubServer;
  let cncf: CncfRegistry;
  let catalog: string;
  let shas: string[];
  const cache = tempDir('trust-cache-');
  const store = tempDir('trust-store-');
  const env = () => ({ HF_ENDPOINT: hub.url, HF_TOKEN: '', DEPOT_CACHE: cache, DEPOT_RETRY_DELAY_MS: '20', SOURCE_DATE_EPOCH: '0', DEPOT_UPLOAD_CHUNK_BYTES: String(1024 * 1024) });
  const writeCatalog = (sha: string) => writeFileSync(catalog, `models:\n  - name: ${NAME}\n    sha: ${sha}\n`);
  const publish = (extra: string[] = [], storeDir = store) => depotAi(['build', NAME, '--store', storeDir, '--catalog', catalog, '--push', cncf.hostPort, '--insecure', '--keep', ...extra], env());
  const verify = (...args: string[]) => depotAi(['verify', '--insecure', ...args], env());
  const remoteDigest = async (repository: string, reference: string) => {
    const res = await fetch(`${cncf.url}/v2/${repository}/manifests/${reference}`, { method: 'HEAD', headers: { Accept: 'application/vnd.oci.image.index.v1+json' } });
    return res.status === 200 ? res.headers.get('docker-content-digest') : undefined;
  };

  before(async () => {
    hub = await startHubServer({ repos: [{ name: NAME, commits: [{ files: FILES }, { files: { ...FILES, 'config.json': Buffer.from('{"model_type":"tiny","hidden":16}') } }] }] });
    shas = hub.shas(NAME);
    catalog = path.join(tempDir('trust-catalog-'), 'models.yaml');
    cncf = await startCncfRegistry();
  });
  after(async () => {
    await hub?.close();
    await cncf?.stop();
  });

  test('a catalog update moves latest; each revision tag stays on its own digest, locally and in the registry', async () => {
    writeCatalog(shas[0]);
    const first = await publish();
    assert.equal(first.status, 0, first.stderr);
    const old = await remoteDigest(IMAGE, 'latest');
    assert.ok(old);
    assert.equal(await remoteDigest(IMAGE, shas[0]), old, 'the revision tag was pushed with latest');

    writeCatalog(shas[1]);
    const second = await publish();
    assert.equal(second.status, 0, second.stderr);
    const moved = await remoteDigest(IMAGE, 'latest');
    assert.notEqual(moved, old, 'latest moved to the new revision');
    assert.equal(await remoteDigest(IMAGE, shas[1]), moved);
    assert.equal(await remoteDigest(IMAGE, shas[0]), old, 'the old revision tag did not move');
    const layout = new ImageLayout(store, IMAGE);
    assert.equal((await layout.resolveTag(shas[0]))?.digest, old);
    assert.equal((await layout.resolveTag('latest'))?.digest, moved);
  });

  test('a build or a push that would move a revision tag is refused, and nothing changes', async () => {
    const layout = new ImageLayout(store, IMAGE);
    const before = await layout.tagged();
    const other = modelDir({ ...FILES, 'config.json': '{"not":"what the hub has"}' });
    const local = await depotAi(['build', NAME, '--from', other, '--store', store, '--sha', shas[0]], env());
    assert.equal(local.status, 1);
    assert.match(local.stderr, new RegExp(`^depot-ai: ${NAME}: ${IMAGE}:${shas[0]} is a revision tag and already points at sha256:[0-9a-f]{64}; it never moves`, 'm'));
    assert.deepEqual(await layout.tagged(), before, 'no tag changed in the store');

    const fresh = tempDir('trust-store-');
    const built = await depotAi(['build', NAME, '--from', other, '--store', fresh, '--sha', shas[1]], env());
    assert.equal(built.status, 0, built.stderr);
    const pusher = await Pusher.connect(parsePushTarget(cncf.hostPort), { insecure: true });
    await assert.rejects(pusher.push(new ImageLayout(fresh, IMAGE), 'latest'), new RegExp(`${IMAGE}:${shas[1]} is a revision tag and already points at sha256:[0-9a-f]{64}; it never moves \\(refusing to push sha256:`));
    assert.equal(await remoteDigest(IMAGE, 'latest'), before.find((d) => d.annotations?.['org.opencontainers.image.ref.name'] === 'latest')?.digest, 'latest was not pushed either');
  });

  test('verify: the published image rebuilds to the identical digest (by tag, by revision tag, and --all --sample)', async () => {
    const byTag = await verify(`${cncf.hostPort}/${IMAGE}:latest`, `${cncf.hostPort}/${IMAGE}:${shas[0]}`);
    assert.equal(byTag.status, 0, byTag.stderr + byTag.stdout);
    const rows = byTag.stdout.trim().split('\n');
    assert.match(rows[0], /^IMAGE\s+REVISION\s+DIGEST\s+RESULT$/);
    assert.match(rows[1], new RegExp(`^${cncf.hostPort}/${IMAGE}\\s+${shas[1].slice(0, 12)}\\s+sha256:[0-9a-f]{12}\\s+identical$`));
    assert.match(rows[2], new RegExp(`\\s${shas[0].slice(0, 12)}\\s.*identical$`));

    const sample = await depotAi(['verify', '--all', '--catalog', catalog, '--registry', cncf.hostPort, '--sample', '1', '--week', '7', '--insecure'], env());
    assert.equal(sample.status, 0, sample.stderr + sample.stdout);
    assert.match(sample.stdout, /identical$/m);
  });

  // One byte changed at a generated position of a small file and of an LFS file: the image carries
  // the honest revision label, so only the rebuild can tell.
  for (const [file, seed] of [['config.json', 3], ['model.safetensors', 5]] as const) {
    test(`verify: an image built with one byte of ${file} changed is reported, naming the file, exit 1`, async () => {
      const original = FILES[file];
      const at = pseudoRandomBytes(4, seed).readUInt32BE(0) % original.length;
      const changed = Buffer.from(original);
      changed[at] ^= 0x01;
      const dir = modelDir({ ...FILES, [file]: changed });
      const fresh = tempDir('trust-store-');
      const prefix = `tampered-${seed}`;
      const built = await depotAi(['build', NAME, '--from', dir, '--store', fresh, '--sha', shas[0]], env());
      assert.equal(built.status, 0, built.stderr);
      await (await Pusher.connect(parsePushTarget(`${cncf.hostPort}/${prefix}`), { insecure: true })).push(new ImageLayout(fresh, IMAGE), 'latest');

      const run = await verify(`${cncf.hostPort}/${prefix}/${IMAGE}:${shas[0]}`, `${cncf.hostPort}/${IMAGE}:latest`);
      assert.equal(run.status, 1, run.stdout);
      const rows = run.stdout.trim().split('\n');
      assert.match(rows[1], new RegExp(`^${cncf.hostPort}/${prefix}/${IMAGE}\\s.*DIFFERENT: rebuilt sha256:[0-9a-f]{64}; files differ: ${file.replace('.', '\\.')}$`));
      assert.match(rows[2], /identical$/, 'the honest image in the same run still verifies');
      assert.match(run.stderr, new RegExp(`^depot-ai: ${cncf.hostPort}/${prefix}/${IMAGE}: DIFFERENT`, 'm'));
    });
  }

  test('verify: a registry whose revision tags moved (swapped between two revisions) fails with one line per image, exit 1', async () => {
    const pusher = await Pusher.connect(parsePushTarget(`${cncf.hostPort}/moved`), { insecure: true });
    const layout = new ImageLayout(store, IMAGE);
    await pusher.push(layout, shas[0]);
    await pusher.push(layout, 'latest');
    const repository = `moved/${IMAGE}`;
    const indexes = await Promise.all(shas.map(async (sha) => Buffer.from(await (await fetch(`${cncf.url}/v2/${repository}/manifests/${sha}`, { headers: { Accept: INDEX } })).arrayBuffer())));
    // The registry moves each revision tag onto the other revision's index (a registry can; ours never does).
    for (const [i, sha] of shas.entries()) {
      const put = await fetch(`${cncf.url}/v2/${repository}/manifests/${sha}`, { method: 'PUT', headers: { 'Content-Type': INDEX }, body: indexes[1 - i] });
      assert.equal(put.status, 201);
    }
    const run = await verify(`${cncf.hostPort}/${repository}:latest`, `${cncf.hostPort}/${repository}:${shas[0]}`);
    assert.equal(run.status, 1, run.stdout);
    const lines = run.stderr.trim().split('\n');
    assert.equal(lines.length, 2, run.stderr);
    assert.match(lines[0], new RegExp(`^depot-ai: ${cncf.hostPort}/${repository}: the revision tag ${cncf.hostPort}/${repository}:${shas[1]} points at sha256:[0-9a-f]{64}, not at sha256:[0-9a-f]{64} \\(latest\\) with that revision: a revision tag never moves$`));
    assert.match(lines[1], new RegExp(`^depot-ai: ${cncf.hostPort}/${repository}: the revision tag ${cncf.hostPort}/${repository}:${shas[0]} points at sha256:[0-9a-f]{64}, an image of revision ${shas[1]}: a revision tag never moves$`));
    assert.match(run.stdout, /failed: the revision tag/);
  });

  // A tag with the form of a revision (generated 40-hex strings) is a revision tag: the catalog, build
  // --tag and the Pusher refuse to set it to anything but the image's own revision.
  test('a tag of the form of a revision is refused by the catalog (FILE:LINE:COL), build --tag and the Pusher', async () => {
    const revisionLike = [shas[0], pseudoRandomBytes(20, 41).toString('hex'), pseudoRandomBytes(20, 43).toString('hex')];
    for (const tag of revisionLike) {
      const { problems } = parseCatalog(`models:\n  - name: ${NAME}\n    sha: ${shas[1]}\n    tag: '${tag}'\n`, 'cat.yaml');
      assert.deepEqual(problems.map(formatProblem), [`cat.yaml:4:10: tag "${tag}" has the form of a revision (a Hub commit sha): revision tags come from \`sha\` and never move; use another tag`]);
    }
    const fresh = tempDir('trust-store-');
    const built = await depotAi(['build', NAME, '--from', modelDir(FILES), '--store', fresh, '--sha', shas[1], '--tag', shas[0]], env());
    assert.equal(built.status, 1);
    assert.match(built.stderr, /^depot-ai: .*has the form of a revision .* use another tag$/m);
    assert.equal(built.stderr.trim().split('\n').length, 1, built.stderr);

    const pusher = await Pusher.connect(parsePushTarget(cncf.hostPort), { insecure: true });
    const latest = (await new ImageLayout(store, IMAGE).resolveTag('latest'))!;
    const labelled = (revision: string) => ({ digest: latest.digest, annotations: { 'org.opencontainers.image.revision': revision } });
    for (const tag of revisionLike.slice(1)) {
      await assert.rejects(pusher.imageTags(IMAGE, tag, labelled(shas[1])), new RegExp(`:${tag} has the form of a revision tag but the image sha256:[0-9a-f]{64} is of revision ${shas[1]}`));
    }
    await assert.rejects(pusher.imageTags(IMAGE, shas[0], labelled(shas[1])), /has the form of a revision tag/, 'another revision\'s existing tag');
    assert.deepEqual(await pusher.imageTags(IMAGE, shas[1], labelled(shas[1])), [shas[1]], 'its own revision tag, already there');
    assert.equal(await remoteDigest(IMAGE, shas[0]), (await new ImageLayout(store, IMAGE).resolveTag(shas[0]))?.digest, 'the revision tag did not move');
  });

  // The referrers tag fallback (sha256-<hex>) names another image's attestations; an upper-case sha looks like a revision.
  test('a tag of the form of a referrers tag or an upper-case revision is refused by the catalog, build --tag and the Pusher', async () => {
    const referrers = [`sha256-${pseudoRandomBytes(32, 47).toString('hex')}`, `SHA512-${pseudoRandomBytes(64, 53).toString('hex')}`];
    const upper = pseudoRandomBytes(20, 59).toString('hex').toUpperCase();
    for (const tag of [...referrers, upper]) {
      const { problems } = parseCatalog(`models:\n  - name: ${NAME}\n    sha: ${shas[1]}\n    tag: '${tag}'\n`, 'cat.yaml');
      assert.equal(problems.length, 1, tag);
      assert.match(formatProblem(problems[0]), new RegExp(`^cat\\.yaml:4:10: tag "${tag}" has the form of a (referrers tag|revision) .*use another tag$`));
    }
    const fresh = tempDir('trust-store-');
    const built = await depotAi(['build', NAME, '--from', modelDir(FILES), '--store', fresh, '--tag', referrers[0]], env());
    assert.equal(built.status, 1);
    assert.match(built.stderr, /^depot-ai: .*has the form of a referrers tag .* use another tag$/m);
    assert.deepEqual(readdirSync(fresh).filter((f) => !f.startsWith('.')), [], 'nothing built');

    const pusher = await Pusher.connect(parsePushTarget(cncf.hostPort), { insecure: true });
    const latest = (await new ImageLayout(store, IMAGE).resolveTag('latest'))!;
    for (const tag of [...referrers, upper]) {
      await assert.rejects(pusher.imageTags(IMAGE, tag, { digest: latest.digest, annotations: latest.annotations }), /has the form of a (referrers|revision) tag: refusing to push/);
    }
  });

  // Labels that are not a Hub commit: a branch, a short sha, upper-case hex.
  test('a revision that is not 40 lower-case hex: not built, not pushed, and verify reports an index labelled with one', async () => {
    const pusher = await Pusher.connect(parsePushTarget(cncf.hostPort), { insecure: true });
    const latest = (await new ImageLayout(store, IMAGE).resolveTag('latest'))!;
    const index = JSON.parse(Buffer.from(await (await fetch(`${cncf.url}/v2/${IMAGE}/manifests/latest`, { headers: { Accept: INDEX } })).arrayBuffer()).toString());
    const revisions = ['main', shas[0].slice(0, 12), shas[0].toUpperCase()];
    for (const [i, revision] of revisions.entries()) {
      await assert.rejects(makeImage({ name: NAME, source: new FolderSource(modelDir(FILES)), sha: revision }, { write: async () => {} }), new RegExp(`sha "${revision}" must be a full commit hash`));
      await assert.rejects(pusher.imageTags(IMAGE, 'latest', { digest: latest.digest, annotations: { 'org.opencontainers.image.revision': revision } }), new RegExp(`labelled revision "${revision}", not a Hub commit`));
      // The registry holds an index labelled so (pushed raw: the Pusher would refuse it).
      const put = await fetch(`${cncf.url}/v2/${IMAGE}/manifests/label-${i}`, { method: 'PUT', headers: { 'Content-Type': INDEX }, body: JSON.stringify({ ...index, annotations: { ...index.annotations, 'org.opencontainers.image.revision': revision } }) });
      assert.equal(put.status, 201);
    }
    const run = await verify(...revisions.map((_, i) => `${cncf.hostPort}/${IMAGE}:label-${i}`));
    assert.equal(run.status, 1, run.stdout);
    for (const revision of revisions) assert.match(run.stdout, new RegExp(`DIFFERENT: the index is labelled revision "${revision}", not a Hub commit \\(40 lower-case hex digits\\)$`, 'm'));
  });

  test('verify: another model\'s honest image under the name asked for is DIFFERENT (by name, by --prefix, and --all by the catalog entry)', async () => {
    await runTool('/usr/bin/skopeo', ['copy', '-q', '--all', '--preserve-digests', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${cncf.hostPort}/${IMAGE}:latest`, `docker://${cncf.hostPort}/swapped/other-org/other-model:latest`]);
    const asked = await verify(`${cncf.hostPort}/swapped/other-org/other-model:latest`);
    assert.equal(asked.status, 1, asked.stdout);
    assert.match(asked.stdout, new RegExp(`DIFFERENT: the image is of ${NAME} \\(its source label\\), not other-org/other-model as asked$`, 'm'));
    assert.equal(asked.stderr.trim().split('\n').length, 1, asked.stderr);
    // With --prefix the whole rest is the image name: a legacy bare name is not an owner's model.
    const prefixed = await verify('--prefix', 'swapped/other-org', `${cncf.hostPort}/swapped/other-org/other-model:latest`);
    assert.match(prefixed.stdout, new RegExp(`not other-model as asked$`, 'm'));

    const other = path.join(tempDir('trust-catalog-'), 'models.yaml');
    writeFileSync(other, `models:\n  - name: Other-Org/Other-Model\n    sha: ${shas[1]}\n`);
    const all = await depotAi(['verify', '--all', '--catalog', other, '--registry', `${cncf.hostPort}/swapped`, '--insecure'], env());
    assert.equal(all.status, 1, all.stdout);
    assert.match(all.stdout, new RegExp(`DIFFERENT: the image is of ${NAME} \\(its source label\\), not the catalog's Other-Org/Other-Model$`, 'm'));
  });

  test('verify --all: an image of another revision than the catalog\'s sha (a rollback) is DIFFERENT, naming both', async () => {
    writeCatalog(shas[0]);
    const run = await depotAi(['verify', '--all', '--catalog', catalog, '--registry', cncf.hostPort, '--insecure'], env());
    writeCatalog(shas[1]);
    assert.equal(run.status, 1, run.stdout);
    assert.match(run.stdout, new RegExp(`DIFFERENT: the image is of revision ${shas[1]}, but the catalog pins ${NAME} at ${shas[0]}$`, 'm'));
  });

  // A local folder pushed under a Hub commit's revision tag would squat it: the honest publish is refused forever.
  test('build --from DIR --push: --sha is refused (exit 2, nothing pushed) and the catalog\'s sha is not taken (no revision label, no revision tag)', async () => {
    const prefix = `squat-${process.pid}`;
    const dir = modelDir({ ...FILES, 'config.json': '{"local":true}' });
    const refused = await depotAi(['build', NAME, '--from', dir, '--store', tempDir('trust-store-'), '--sha', shas[0], '--tag', 'dev', '--push', `${cncf.hostPort}/${prefix}`, '--insecure'], env());
    assert.equal(refused.status, 2, refused.stderr);
    assert.equal(refused.stderr, 'depot-ai: --sha with --from and --push: a local folder is not the Hub commit; revision tags come from Hub builds (build without --from, or into the store without --push)\n');
    assert.equal(await remoteDigest(`${prefix}/${IMAGE}`, 'dev'), undefined);

    writeCatalog(shas[0]);
    const pushed = await depotAi(['build', NAME, '--from', dir, '--catalog', catalog, '--store', tempDir('trust-store-'), '--push', `${cncf.hostPort}/${prefix}`, '--insecure'], env());
    writeCatalog(shas[1]);
    assert.equal(pushed.status, 0, pushed.stderr);
    const tags = await (await fetch(`${cncf.url}/v2/${prefix}/${IMAGE}/tags/list`)).json();
    assert.deepEqual(tags.tags, ['latest'], 'no revision tag');
    const index = await (await fetch(`${cncf.url}/v2/${prefix}/${IMAGE}/manifests/latest`, { headers: { Accept: INDEX } })).json();
    assert.equal(index.annotations?.['org.opencontainers.image.revision'], undefined, 'no revision label');
  });

  test('build --from DIR --attest is refused (the provenance would name the Hub as the source), nothing written', async () => {
    const fresh = tempDir('trust-store-');
    const run = await depotAi(['build', NAME, '--from', modelDir(FILES), '--store', fresh, '--sha', shas[0], '--attest'], env());
    assert.equal(run.status, 2);
    assert.equal(run.stderr, 'depot-ai: --attest signs that the files come from the Hub at the commit: build without --from to attest\n');
    assert.deepEqual(readdirSync(fresh), []);
  });

  // A label is the registry's text: newlines (a forged `::warning` line or table row), ANSI escapes, C1 and DEL are escaped.
  test('verify prints registry-controlled labels with control characters escaped: one stderr line, one table row', async () => {
    const index = JSON.parse(Buffer.from(await (await fetch(`${cncf.url}/v2/${IMAGE}/manifests/latest`, { headers: { Accept: INDEX } })).arrayBuffer()).toString());
    const controls = [...'\n\r\t\x00\x07\x1b\x7f\x85\x9b\u2028\u2029'];
    const pick = pseudoRandomBytes(8, 73);
    const hostile = `https://huggingface.co/${NAME}${[...pick].map((b, i) => `${controls[b % controls.length]}${i === 0 ? '::warning title=verify::all identical' : '[2K'}`).join('')}`;
    const put = await fetch(`${cncf.url}/v2/${IMAGE}/manifests/hostile`, { method: 'PUT', headers: { 'Content-Type': INDEX }, body: JSON.stringify({ ...index, annotations: { ...index.annotations, 'org.opencontainers.image.source': hostile } }) });
    assert.equal(put.status, 201);
    const run = await verify(`${cncf.hostPort}/${IMAGE}:hostile`);
    assert.equal(run.status, 1, run.stdout);
    const control = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029]/;
    assert.doesNotMatch(run.stdout + run.stderr, control);
    assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
    assert.equal(run.stdout.trim().split('\n').length, 2, run.stdout);
    assert.match(run.stderr, /\\(n|r|t|x[0-9a-f]{2}|u202[89])::warning title=verify::all identical/, 'the control character is shown escaped');
    assert.doesNotMatch(run.stderr, /^::warning/m);
  });

  test('verify: usage errors exit 2 with one line', async () => {
    for (const args of [[], ['--all', `${cncf.hostPort}/x`], ['--sample', '2', `${cncf.hostPort}/x`], ['--provenance', `${cncf.hostPort}/x`], ['--all', '--prefix', 'p'], ['--deadline', '2147484', `${cncf.hostPort}/x`], ['--deadline', '1e12', `${cncf.hostPort}/x`]]) {
      const run = await depotAi(['verify', ...args], env());
      assert.equal(run.status, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
    }
  });
});
