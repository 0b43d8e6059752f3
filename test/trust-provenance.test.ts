// Signed provenance: `build --attest` with a local P-256 key (Fulcio and Rekor are unreachable
// here; the keyless path is the same code with sigstore's attest) attaches an in-toto SLSA
// statement as an OCI 1.1 artifact: in the store, where `serve` lists it through the referrers
// API (with artifactType filtering) and skopeo reads it back, and in the CNCF registry (2.8, no
// referrers API) through the sha256-<hex> tag. `verify --provenance` accepts it and rejects a
// tampered bundle, another key, a statement about another subject and one with a wrong file digest.
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { SerializedBundle } from '@sigstore/bundle';
import { ImageLayout } from '../image/layout.ts';
import { sha256Digest } from '../image/oci.ts';
import { parsePushTarget, Pusher } from '../client/push.ts';
import { referrersTag } from '../client/referrers.ts';
import { BUNDLE_ARTIFACT_TYPE, type ArtifactDescriptor } from '../trust/artifact.ts';
import { storeAttestation } from '../trust/attach.ts';
import { MAX_REFERRERS } from '../trust/check.ts';
import { provenanceStatement } from '../trust/provenance.ts';
import { signStatement, verifiedPayload } from '../trust/signing.ts';
import { depotAi } from './helpers/cli.ts';
import { startRecordingProxy } from './helpers/proxy.ts';
import { startLyingServer } from './helpers/lying-server.ts';
import { buildSite } from './helpers/site.ts';
import { actionsRunUrl, pageProvenance } from '../site/lib/provenance.ts';
import { siteConfig } from '../site/lib/config.ts';
import { entryImageProblem, readImageInfo, readRemoteImageInfo } from '../site/lib/image-info.ts';
import { startHubServer, type HubServer } from './helpers/hub-server.ts';
import { pseudoRandomBytes, tempDir } from './helpers/models.ts';
import { errorCode, raw, runTool, startCncfRegistry, startTestRegistry, tool, type CncfRegistry, type TestRegistry } from './helpers/registry.ts';

for (const file of ['/usr/bin/docker-registry', '/usr/bin/skopeo']) tool(file);

const NAME = 'Prov-Org/Signed-Model';
const IMAGE = 'prov-org/signed-model';
const FILES = { 'config.json': '{"model_type":"signed"}', 'weights.safetensors': pseudoRandomBytes(200 * 1024 + 5, 31) };
const INDEX = 'application/vnd.oci.image.index.v1+json';
/** What a GitHub Actions run sets: the builder id and the run link in the provenance. */
const RUN = {
  GITHUB_SERVER_URL: 'https://github.com',
  GITHUB_REPOSITORY: 'depot/depot.ai',
  GITHUB_WORKFLOW_REF: 'depot/depot.ai/.github/workflows/publish.yml@refs/heads/main',
  GITHUB_RUN_ID: '4242',
  GITHUB_RUN_ATTEMPT: '1',
};

describe('signed provenance', () => {
  let hub: HubServer;
  let cncf: CncfRegistry;
  let serve: TestRegistry;
  let catalog: string;
  let sha: string;
  let indexDigest: string;
  let key: KeyObject;
  const keys = tempDir('prov-keys-');
  const store = tempDir('prov-store-');
  const env = () => ({ HF_ENDPOINT: hub.url, HF_TOKEN: '', DEPOT_CACHE: tempDir('prov-cache-'), DEPOT_RETRY_DELAY_MS: '20', SOURCE_DATE_EPOCH: '0' });
  const verify = (reference: string, keyFile = path.join(keys, 'public.pem')) => depotAi(['verify', '--insecure', '--provenance', '--key', keyFile, reference], env());

  before(async () => {
    hub = await startHubServer({ repos: [{ name: NAME, commits: [{ files: FILES }] }] });
    sha = hub.head(NAME);
    catalog = path.join(tempDir('prov-catalog-'), 'models.yaml');
    writeFileSync(catalog, `models:\n  - name: ${NAME}\n    sha: ${sha}\n`);
    ({ privateKey: key } = generateKeyPairSync('ec', { namedCurve: 'P-256' }));
    writeFileSync(path.join(keys, 'private.pem'), key.export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(path.join(keys, 'public.pem'), createPublicKey(key).export({ type: 'spki', format: 'pem' }));
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    writeFileSync(path.join(keys, 'other.pem'), other.export({ type: 'spki', format: 'pem' }));
    cncf = await startCncfRegistry();
    serve = await startTestRegistry({ store, log: false });
  });
  after(async () => {
    await serve?.close();
    await hub?.close();
    await cncf?.stop();
  });

  test('build --attest --push --keep: the attestation goes into the store and, through the referrers tag, to the CNCF registry', async () => {
    const publish = (...extra: string[]) => depotAi(['build', NAME, '--store', store, '--catalog', catalog, '--push', cncf.hostPort, '--insecure', '--keep', ...extra], { ...env(), ...RUN });
    const attesting = ['--attest', '--signing-key', path.join(keys, 'private.pem')];
    const plain = await publish();
    assert.equal(plain.status, 0, plain.stderr);
    assert.doesNotMatch(plain.stdout, /attested/);
    // Published before it was attested: not "up to date" until it is.
    const run = await publish(...attesting);
    assert.equal(run.status, 0, run.stderr);
    assert.doesNotMatch(run.stdout, /is up to date/);
    indexDigest = (await new ImageLayout(store, IMAGE).resolveTag('latest'))!.digest;
    assert.match(run.stdout, new RegExp(`^attested ${cncf.hostPort}/${IMAGE}@${indexDigest}: sha256:[0-9a-f]{64} \\(referrers tag\\)$`, 'm'));
    const fallback = await fetch(`${cncf.url}/v2/${IMAGE}/manifests/${referrersTag(indexDigest)}`, { headers: { Accept: INDEX } });
    assert.equal(fallback.status, 200);
    const listed = (await fallback.json()) as { manifests: { artifactType: string }[] };
    assert.deepEqual(listed.manifests.map((m) => m.artifactType), [BUNDLE_ARTIFACT_TYPE]);
    const again = await publish(...attesting);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /is up to date/, 'attested already: nothing to do');
  });

  test('the model page, built from the registry as publish.yml builds it (empty store), shows the verified provenance: revision tag line, digest pin, who built it from which commit, when', async () => {
    const dist = tempDir('prov-site-');
    const site = await buildSite({ catalog, store: tempDir('prov-empty-'), registryUrl: cncf.url, provenanceKey: path.join(keys, 'public.pem'), outDir: dist, registryHost: 'models.example.test' });
    assert.equal(site.code, 0, site.stderr);
    const html = await readFile(path.join(dist, `${NAME}.html`), 'utf8');
    assert.ok(html.includes(`data-copy="COPY --link --from=models.example.test/${IMAGE}:${sha} / ."`), 'the revision tag line');
    assert.ok(html.includes(`models.example.test/${IMAGE}@${indexDigest}`), 'the digest pin');
    const provenance = /data-provenance[^>]*>([\s\S]*?)<\/p>/.exec(html)?.[1] ?? '';
    assert.ok(provenance.includes(`href="${RUN.GITHUB_SERVER_URL}/${RUN.GITHUB_REPOSITORY}/actions/runs/${RUN.GITHUB_RUN_ID}/attempts/1"`), provenance);
    assert.ok(provenance.includes('depot/depot.ai/.github/workflows/publish.yml@refs/heads/main'), provenance);
    assert.ok(provenance.includes(sha.slice(0, 12)), provenance);
    assert.match(provenance, /<time datetime="\d{4}-\d\d-\d\dT[^"]+">\d{4}-\d\d-\d\d<\/time>/);
  });

  test('the model page shows no provenance for attestations that do not verify (a forged signature, a signed statement of another commit), and the build says why', async () => {
    const forgedStore = tempDir('prov-forged-');
    const layout = new ImageLayout(forgedStore, IMAGE);
    const source = new ImageLayout(store, IMAGE);
    const subject = (await source.resolveTag('latest'))!;
    const index = await source.readJson<{ manifests: { digest: string }[] }>(subject.digest);
    const manifest = await source.readJson<{ config: { digest: string }; layers: { digest: string }[] }>(index.manifests[0].digest);
    for (const digest of [subject.digest, index.manifests[0].digest, manifest.config.digest, manifest.layers[0].digest]) await layout.writeBlob(await source.readBlob(digest));
    await layout.setTag('latest', subject);
    await layout.setTag(sha, subject); // the revision tag on the same index: the page offers its line and checks the provenance
    const hostile = { invocationId: 'javascript:alert(document.domain)' };
    const forged = structuredClone(await signed({ ...hostile }));
    forged.dsseEnvelope!.signatures[0].sig = Buffer.from('not a signature').toString('base64');
    for (const bundle of [await signed({ ...hostile, sha: 'deadbeef'.repeat(5) }), forged]) await storeAttestation(layout, bundle, subject, new Date());
    const dist = tempDir('prov-site-');
    const site = await buildSite({ catalog, store: forgedStore, provenanceKey: path.join(keys, 'public.pem'), outDir: dist });
    assert.equal(site.code, 0, site.stderr);
    const html = await readFile(path.join(dist, `${NAME}.html`), 'utf8');
    assert.ok(html.includes(`@${indexDigest}`), 'the image is shown');
    assert.doesNotMatch(html, /data-provenance|javascript:|deadbeefdead/);
    assert.match(site.stderr + site.stdout, new RegExp(`^site: ${NAME}: no provenance shown: the attestation's (signature does not verify|commit is deadbeef)`, 'm'));

    const unset = await buildSite({ catalog, store, outDir: tempDir('prov-site-') });
    assert.match(unset.stderr + unset.stdout, /^site: model pages show no provenance: set DEPOT_PROVENANCE_KEY/m);
    assert.doesNotMatch(await readFile(path.join(unset.outDir, `${NAME}.html`), 'utf8'), /data-provenance/);
  });

  // Read as the model page reads it: the file digests of the layer's TOC, a deadline per model, the entry's labels.
  test('model pages: provenance whose file digests differ from the image is not shown; registry reads end by the deadline; an image labelled as another model or revision is not the entry\'s', async (t) => {
    const warned: string[] = [];
    t.mock.method(console, 'warn', (line: string) => warned.push(line));
    const config = { ...siteConfig({}), store, provenanceKey: path.join(keys, 'public.pem'), provenanceDeadlineMs: 1500 };
    const entry = { name: NAME, image: IMAGE, sha };
    const info = (await readImageInfo(store, IMAGE, 'latest'))!;
    assert.ok(await pageProvenance(config, entry, info), 'the honest image verifies');
    for (const seed of [61, 67]) {
      const i = pseudoRandomBytes(1, seed)[0] % info.files.length;
      const changed = { ...info, files: info.files.map((f, j) => (j === i ? { ...f, digest: sha256Digest(`other ${f.path}`) } : f)) };
      assert.equal(await pageProvenance(config, entry, changed), undefined, info.files[i].path);
      assert.match(warned.at(-1)!, new RegExp(`^site: ${NAME}: no provenance shown: .*${info.files[i].path.replace('.', '\\.')}`));
    }

    // Every answer trickles a byte every 200 ms, well within the 30 s idle bound: only the deadline ends it.
    const trickle = await startLyingServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': INDEX });
      const timer = setInterval(() => res.write(' '), 200);
      res.on('close', () => clearInterval(timer));
    });
    try {
      const started = performance.now();
      assert.equal(await pageProvenance({ ...config, registryUrl: trickle.url }, entry, info), undefined);
      assert.ok(performance.now() - started < 15_000, 'ended by the deadline');
      assert.match(warned.at(-1)!, new RegExp(`^site: ${NAME}: no provenance shown: .*(took more than|did not finish within) 1\\.5 s`));
    } finally {
      await trickle.close();
    }

    const remote = (await readRemoteImageInfo(cncf.url, IMAGE, 'latest'))!;
    assert.equal(entryImageProblem(entry, remote), undefined);
    const other = pseudoRandomBytes(20, 71).toString('hex');
    assert.match(entryImageProblem({ name: 'Other-Org/Other-Model', sha }, remote)!, new RegExp(`^${IMAGE}:latest is labelled "https://huggingface.co/${NAME}" at revision "${sha}", not https://huggingface.co/Other-Org/Other-Model at ${sha}$`));
    assert.match(entryImageProblem({ name: NAME, sha: other }, remote)!, new RegExp(`not https://huggingface.co/${NAME} at ${other}$`));
  });

  test('a model page whose registry image is of another revision than the catalog entry shows a warning, no digest pin, revision line, files or provenance', async () => {
    const other = pseudoRandomBytes(20, 79).toString('hex');
    const stale = path.join(tempDir('prov-catalog-'), 'models.yaml');
    writeFileSync(stale, `models:\n  - name: ${NAME}\n    sha: ${other}\n`);
    const dist = tempDir('prov-site-');
    const site = await buildSite({ catalog: stale, store: tempDir('prov-empty-'), registryUrl: cncf.url, provenanceKey: path.join(keys, 'public.pem'), outDir: dist });
    assert.equal(site.code, 0, site.stderr);
    assert.match(site.stderr + site.stdout, new RegExp(`^site: ${NAME}: no image data shown: ${IMAGE}:latest is labelled "https://huggingface.co/${NAME}" at revision "${sha}", not https://huggingface.co/${NAME} at ${other}$`, 'm'));
    const html = await readFile(path.join(dist, `${NAME}.html`), 'utf8');
    assert.match(html, /data-mismatch/);
    assert.doesNotMatch(html, new RegExp(`${indexDigest}|data-revision|data-provenance|data-path=`));
    // The homepage row gets the same check (issue 14): a warning, no copy button.
    const row = /<li data-name=[^>]*>(.*?)<\/li>/s.exec(await readFile(path.join(dist, 'index.html'), 'utf8'))?.[1] ?? '';
    assert.match(row, /data-mismatch/);
    assert.doesNotMatch(row, /data-copy=/);
    assert.equal((site.stderr + site.stdout).match(/no image data shown/g)?.length, 1, 'read and checked once for the row and the page');
  });

  test('a run link is only a GitHub Actions run URL rebuilt from its parts', () => {
    const good = 'https://github.com/depot/depot.ai/actions/runs/4242/attempts/2';
    assert.equal(actionsRunUrl(good), good);
    for (const bad of ['javascript:alert(1)', 'http://github.com/a/b/actions/runs/1', 'https://github.com.evil.example/a/b/actions/runs/1', 'https://github.com/a/b/actions/runs/1/../../x', `${good}"><script>`, 'https://github.com/a/b/actions/runs/1?x=javascript:']) {
      assert.equal(actionsRunUrl(bad), undefined, bad);
    }
  });

  test('serve lists it through the referrers API, filters by artifactType, and skopeo reads the artifact back', async () => {
    const res = await raw(serve.url, `/v2/${IMAGE}/referrers/${indexDigest}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], INDEX);
    assert.equal(res.headers['oci-filters-applied'], undefined);
    const index = JSON.parse(res.body.toString()) as { manifests: { digest: string; artifactType: string; mediaType: string; size: number }[] };
    assert.equal(index.manifests.length, 1);
    const [artifact] = index.manifests;
    assert.equal(artifact.artifactType, BUNDLE_ARTIFACT_TYPE);

    const filtered = await raw(serve.url, `/v2/${IMAGE}/referrers/${indexDigest}?artifactType=${encodeURIComponent(BUNDLE_ARTIFACT_TYPE)}`);
    assert.equal(filtered.headers['oci-filters-applied'], 'artifactType');
    assert.equal(JSON.parse(filtered.body.toString()).manifests.length, 1);
    const none = await raw(serve.url, `/v2/${IMAGE}/referrers/${indexDigest}?artifactType=application%2Fvnd.example.sbom`);
    assert.deepEqual(JSON.parse(none.body.toString()).manifests, []);
    const other = await raw(serve.url, `/v2/${IMAGE}/referrers/${sha256Digest('nothing refers to this')}`);
    assert.equal(other.status, 200);
    assert.deepEqual(JSON.parse(other.body.toString()).manifests, []);
    assert.equal(errorCode(await raw(serve.url, `/v2/${IMAGE}/referrers/sha256:abc`)), 'DIGEST_INVALID');
    assert.equal(errorCode(await raw(serve.url, `/v2/nobody/here/referrers/${indexDigest}`)), 'NAME_UNKNOWN');

    const { stdout } = await runTool('/usr/bin/skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${serve.hostPort}/${IMAGE}@${artifact.digest}`]);
    assert.equal(sha256Digest(stdout), artifact.digest);
    const manifest = JSON.parse(stdout) as { subject: { digest: string }; layers: { digest: string }[] };
    assert.equal(manifest.subject.digest, indexDigest);
    const layout = new ImageLayout(store, IMAGE);
    const payload = JSON.parse((await verifiedPayload(await layout.readJson(manifest.layers[0].digest), { key })).toString());
    assert.equal(payload.subject[0].digest.sha256, indexDigest.slice(7));
    assert.equal(payload.predicate.buildDefinition.resolvedDependencies[0].digest.gitCommit, sha);
  });

  test('verify --provenance: identical and verified through the referrers API (serve) and the referrers tag (CNCF)', async () => {
    for (const host of [serve.hostPort, cncf.hostPort]) {
      const run = await verify(`${host}/${IMAGE}:latest`);
      assert.equal(run.status, 0, run.stderr + run.stdout);
      assert.match(run.stdout, /^IMAGE\s+REVISION\s+DIGEST\s+RESULT\s+PROVENANCE$/m);
      assert.match(run.stdout, /identical\s+verified$/m);
    }
  });

  test('build --attest --push streamed (no store copy): revision tag, attestation through the referrers tag, verify passes; nothing kept', async () => {
    const tmp = tempDir('prov-stream-tmp-');
    const streamStore = path.join(tmp, 'store');
    const run = await depotAi(['build', NAME, '--catalog', catalog, '--push', `${cncf.hostPort}/streamed`, '--insecure', '--attest', '--signing-key', path.join(keys, 'private.pem')], { ...env(), ...RUN, DEPOT_STORE: streamStore, TMPDIR: tmp });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`^attested ${cncf.hostPort}/streamed/${IMAGE}@${indexDigest}: sha256:[0-9a-f]{64} \\(referrers tag\\)$`, 'm'), 'the same index as the kept build');
    assert.match(run.stdout, /built, pushed, attested$/m);
    const revision = await fetch(`${cncf.url}/v2/streamed/${IMAGE}/manifests/${sha}`, { method: 'HEAD', headers: { Accept: INDEX } });
    assert.equal(revision.headers.get('docker-content-digest'), indexDigest, 'the revision tag');
    assert.deepEqual(readdirSync(tmp).filter((f) => !f.startsWith('tsx-')), [], 'no store, no scratch layout left');
    const verified = await verify(`${cncf.hostPort}/streamed/${IMAGE}:latest`);
    assert.equal(verified.status, 0, verified.stderr + verified.stdout);
    assert.match(verified.stdout, /identical\s+verified$/m);
  });

  test('a registry that answers OCI-Subject but lists nothing: the attestation still reaches clients, through the referrers tag', async () => {
    const liar = await startRecordingProxy(cncf.url);
    try {
      liar.faults.push({ method: 'PUT', urlIncludes: '/manifests/sha256:', addHeaders: { 'OCI-Subject': indexDigest }, times: Infinity });
      const run = await depotAi(['build', NAME, '--catalog', catalog, '--push', `${liar.hostPort}/subject-liar`, '--insecure', '--attest', '--signing-key', path.join(keys, 'private.pem')], { ...env(), ...RUN, DEPOT_STORE: tempDir('prov-liar-store-') });
      assert.equal(run.status, 0, run.stderr);
      assert.match(run.stdout, /\(referrers tag\)$/m, 'not believed: the list did not show it');
      const verified = await verify(`${liar.hostPort}/subject-liar/${IMAGE}:latest`);
      assert.equal(verified.status, 0, verified.stderr + verified.stdout);
      assert.match(verified.stdout, /identical\s+verified$/m);
    } finally {
      await liar.close();
    }
  });

  test('a pull-through serve lists the upstream\'s referrers (from its referrers tag) and verify passes through it', async () => {
    const mirror = await startTestRegistry({ store: tempDir('prov-mirror-'), upstream: cncf.url, log: false });
    try {
      const res = await raw(mirror.url, `/v2/${IMAGE}/referrers/${indexDigest}?artifactType=${encodeURIComponent(BUNDLE_ARTIFACT_TYPE)}`);
      assert.equal(res.status, 200);
      assert.equal(JSON.parse(res.body.toString()).manifests.length, 1);
      const run = await verify(`${mirror.hostPort}/${IMAGE}:latest`);
      assert.equal(run.status, 0, run.stderr + run.stdout);
      assert.match(run.stdout, /identical\s+verified$/m);
      // A second mirror in front of the first caches what verify read; with its upstream gone it
      // still lists the referrers it holds (as every cached read is still served).
      const outer = await startTestRegistry({ store: tempDir('prov-mirror-'), upstream: mirror.url, log: false });
      try {
        assert.equal((await verify(`${outer.hostPort}/${IMAGE}:latest`)).status, 0);
        await mirror.close();
        const cached = await raw(outer.url, `/v2/${IMAGE}/referrers/${indexDigest}`);
        assert.equal(cached.status, 200, cached.body.toString());
        assert.equal(JSON.parse(cached.body.toString()).manifests.length, 1);
        const offline = await verify(`${outer.hostPort}/${IMAGE}:latest`);
        assert.equal(offline.status, 0, offline.stderr + offline.stdout);
        assert.match(offline.stdout, /identical\s+verified$/m);
      } finally {
        await outer.close();
      }
    } finally {
      await mirror.close();
    }
  });

  test('verify --provenance with another key: rejected, exit 1', async () => {
    const run = await verify(`${cncf.hostPort}/${IMAGE}:latest`, path.join(keys, 'other.pem'));
    assert.equal(run.status, 1);
    assert.match(run.stdout, /identical\s+REJECTED: the attestation's signature does not verify: signed by key [0-9a-f]{64}, not the given key/m);
  });

  // Each case: the same image pushed to its own repository with one bad attestation attached.
  const cases: Array<[string, () => Promise<SerializedBundle>, RegExp]> = [
    ['a tampered bundle (payload changed, signature kept)', async () => {
      const bundle = structuredClone(await honestBundle());
      const statement = JSON.parse(Buffer.from(bundle.dsseEnvelope!.payload, 'base64').toString());
      statement.predicate.runDetails.builder.id = 'https://evil.example/builder';
      bundle.dsseEnvelope!.payload = Buffer.from(JSON.stringify(statement)).toString('base64');
      return bundle;
    }, /REJECTED: the attestation's signature does not verify: signature verification failed/],
    ['a signed statement about another subject', () => signed({ indexDigest: sha256Digest('another image') }), /REJECTED: the attestation's subject is sha256:[0-9a-f]{64}, not the image sha256:/],
    ['a signed statement built from another model (entry and Hub repository)', () => signed({ name: 'Evil-Org/Other-Model' }), new RegExp(`REJECTED: the attestation is about Evil-Org/Other-Model \\(https://huggingface\\.co/Evil-Org/Other-Model\\), not ${NAME}$`, 'm')],
    ['a signed statement from another commit', () => signed({ sha: 'f'.repeat(40) }), new RegExp(`REJECTED: the attestation's commit is ${'f'.repeat(40)}, not the image's revision [0-9a-f]{40}$`, 'm')],
    ['a signed statement whose subject names another image', () => signed({ image: 'evil-org/other-model' }), /REJECTED: the attestation's subject is named 127\.0\.0\.1:\d+\/evil-org\/other-model, not an image of Prov-Org\/Signed-Model$/m],
    ['a signed statement with one file digest wrong', () => signed({ files: { 'config.json': sha256Digest('other bytes'), 'weights.safetensors': sha256Digest(FILES['weights.safetensors']) } }), /REJECTED: config\.json is sha256:[0-9a-f]{64} in the image but sha256:[0-9a-f]{64} in the attestation/],
  ];
  for (const [what, bundle, expected] of cases) {
    test(`verify --provenance rejects ${what}`, async () => {
      const prefix = `bad-${cases.findIndex((c) => c[0] === what)}`;
      const layout = new ImageLayout(store, IMAGE);
      const subject = (await layout.resolveTag('latest'))!;
      const pusher = await Pusher.connect(parsePushTarget(`${cncf.hostPort}/${prefix}`), { insecure: true });
      await pusher.push(layout, 'latest');
      // A separate layout holds the bad artifact, so the store serve reads stays honest.
      const bad = new ImageLayout(tempDir('prov-bad-'), IMAGE);
      const artifact = await storeAttestation(bad, await bundle(), subject, new Date());
      assert.equal(await pusher.pushReferrer(bad, `${prefix}/${IMAGE}`, artifact), 'tag');

      const run = await verify(`${cncf.hostPort}/${prefix}/${IMAGE}:latest`);
      assert.equal(run.status, 1, run.stdout);
      assert.match(run.stdout, expected);
      assert.match(run.stderr, /^depot-ai: provenance: /m);
    });
  }

  // A registry that lies: a small server in front of the CNCF registry answering some paths itself.
  // Each lie makes verify --provenance fail with one line naming it, and exit 1.
  // With `mirrored`, a pull-through serve in front of the liar refuses the list too (502, OCI error JSON).
  const lies: Array<[string, () => Promise<Record<string, { type: string; body: Buffer; digest?: string }>>, RegExp, boolean?]> = [
    ['serves another manifest for the referrer it lists (digest claimed, bytes changed)', async () => {
      const artifact = await cncfArtifact();
      const json = JSON.parse(artifact.bytes.toString());
      json.annotations['org.opencontainers.image.created'] = '1999-01-01T00:00:00.000Z';
      return { [`/v2/${IMAGE}/manifests/${artifact.digest}`]: { type: artifact.mediaType, body: Buffer.from(JSON.stringify(json)), digest: artifact.digest } };
    }, /REJECTED: the manifest 127\.0\.0\.1:\d+\/[^@]+@(sha256:[0-9a-f]{64}) has digest sha256:[0-9a-f]{64}, not \1: refusing it$/m],
    ['lists as a referrer an attestation whose subject is another image', async () => {
      const other = { mediaType: INDEX, digest: sha256Digest('another image'), size: 13 };
      const bad = new ImageLayout(tempDir('prov-liar-'), IMAGE);
      const artifact = await storeAttestation(bad, await honestBundle(), other, new Date());
      const pusher = await Pusher.connect(parsePushTarget(cncf.hostPort), { insecure: true });
      await pusher.pushReferrer(bad, IMAGE, artifact);
      return { [`/v2/${IMAGE}/referrers/${indexDigest}`]: { type: INDEX, body: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: [artifact] })) } };
    }, /REJECTED: the attestation sha256:[0-9a-f]{64} is about sha256:[0-9a-f]{64}, not the image sha256:[0-9a-f]{64}$/m],
    ['answers a referrers list with a malformed descriptor', async () => ({
      [`/v2/${IMAGE}/referrers/${indexDigest}`]: { type: INDEX, body: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: [{ mediaType: INDEX, digest: 'sha256:../../etc', size: 1 }] })) },
    }), /failed: the referrers of 127\.0\.0\.1:\d+\/\S+ lists a malformed descriptor/, true],
  ];
  for (const [what, makeLies, expected, mirrored] of lies) {
    test(`verify --provenance against a registry that ${what}: one clear line, exit 1`, async () => {
      const answers = await makeLies();
      const liar = await startLyingServer(async (req, res) => {
        const lie = answers[req.url!.split('?')[0]];
        if (lie) {
          res.writeHead(200, { 'Content-Type': lie.type, 'Content-Length': lie.body.length, ...(lie.digest ? { 'Docker-Content-Digest': lie.digest } : {}) });
          res.end(req.method === 'HEAD' ? undefined : lie.body);
          return;
        }
        await relay(req, res);
      });
      try {
        const run = await verify(`${liar.hostPort}/${IMAGE}:latest`);
        assert.equal(run.status, 1, run.stdout + run.stderr);
        assert.match(run.stdout, expected);
        assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
        if (mirrored) {
          const mirror = await startTestRegistry({ store: tempDir('prov-mirror-'), upstream: liar.url, log: false });
          try {
            const res = await raw(mirror.url, `/v2/${IMAGE}/referrers/${indexDigest}`);
            assert.equal(res.status, 502);
            assert.equal(errorCode(res), 'UNKNOWN');
            assert.match(res.body.toString(), /malformed descriptor/);
          } finally {
            await mirror.close();
          }
        }
      } finally {
        await liar.close();
      }
    });
  }

  // Bogus referrers listed before the real one: at most MAX_REFERRERS are fetched, and a registry
  // that trickles one of them byte by byte runs into verify's --deadline for the image's reads.
  test('verify --provenance: at most MAX_REFERRERS referrers fetched, and --deadline bounds all the reads of an image', async () => {
    const real = await cncfArtifact();
    const bogus = Array.from({ length: 3 * MAX_REFERRERS }, (_, i) => sha256Digest(`bogus referrer ${i}`));
    const list = (digests: string[]) => Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: [...digests.map((digest) => ({ digest, size: 600 })), { digest: real.digest, size: real.bytes.length }].map((d) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...d, artifactType: BUNDLE_ARTIFACT_TYPE })) }));
    let trickle = false;
    const liar = await startLyingServer(async (req, res) => {
      const path = req.url!.split('?')[0];
      if (path === `/v2/${IMAGE}/referrers/${indexDigest}`) {
        res.writeHead(200, { 'Content-Type': INDEX }).end(list(trickle ? bogus.slice(0, 1) : bogus));
      } else if (bogus.some((d) => path === `/v2/${IMAGE}/manifests/${d}`)) {
        if (!trickle) return void res.writeHead(404).end();
        res.writeHead(200, { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json', 'Content-Length': 600 });
        const drip = setInterval(() => res.write(' '), 200);
        res.on('close', () => clearInterval(drip));
      } else await relay(req, res);
    });
    try {
      const many = await verify(`${liar.hostPort}/${IMAGE}:latest`);
      assert.equal(many.status, 1, many.stdout);
      assert.match(many.stdout, /REJECTED: /);
      const fetched = liar.seen.filter((s) => bogus.some((d) => s.url.endsWith(`/manifests/${d}`)));
      assert.equal(new Set(fetched.map((s) => s.url)).size, MAX_REFERRERS, 'the first MAX_REFERRERS listed, no more');

      trickle = true;
      const slow = await depotAi(['verify', '--insecure', '--provenance', '--key', path.join(keys, 'public.pem'), '--deadline', '3', `${liar.hostPort}/${IMAGE}:latest`], env());
      assert.equal(slow.status, 1, slow.stdout);
      assert.match(slow.stdout, new RegExp(`failed: the registry's answers took more than --deadline 3 s in all\\s+-$`, 'm'));
      assert.equal(slow.stderr.trim().split('\n').length, 1, slow.stderr);
    } finally {
      await liar.close();
    }
  });

  /** Relay a request to the CNCF registry and its answer back. */
  async function relay(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const headers: Record<string, string> = {};
    for (const name of ['accept', 'range']) if (req.headers[name]) headers[name] = String(req.headers[name]);
    const up = await fetch(`${cncf.url}${req.url}`, { method: req.method, headers });
    const body = Buffer.from(await up.arrayBuffer());
    const relayed = Object.fromEntries([...up.headers].filter(([name]) => !['transfer-encoding', 'connection', 'content-length'].includes(name)));
    res.writeHead(up.status, { ...relayed, ...(req.method === 'HEAD' ? {} : { 'Content-Length': body.length }) });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  /** The honest attestation's manifest as the CNCF registry holds it (found through its referrers tag). */
  async function cncfArtifact(): Promise<{ digest: string; mediaType: string; bytes: Buffer }> {
    const listed = await (await fetch(`${cncf.url}/v2/${IMAGE}/manifests/${referrersTag(indexDigest)}`, { headers: { Accept: INDEX } })).json() as { manifests: { digest: string; mediaType: string }[] };
    const { digest, mediaType } = listed.manifests[0];
    const bytes = Buffer.from(await (await fetch(`${cncf.url}/v2/${IMAGE}/manifests/${digest}`, { headers: { Accept: mediaType } })).arrayBuffer());
    return { digest, mediaType, bytes };
  }

  async function honestBundle(): Promise<SerializedBundle> {
    const layout = new ImageLayout(store, IMAGE);
    const entry = ((await layout.tagged()) as ArtifactDescriptor[]).find((d) => d.artifactType === BUNDLE_ARTIFACT_TYPE)!;
    const manifest = await layout.readJson<{ layers: { digest: string }[] }>(entry.digest);
    return layout.readJson<SerializedBundle>(manifest.layers[0].digest);
  }

  function signed(change: { indexDigest?: string; files?: Record<string, string>; name?: string; sha?: string; image?: string; invocationId?: string }): Promise<SerializedBundle> {
    const files = change.files ?? Object.fromEntries(Object.entries(FILES).map(([p, c]) => [p, sha256Digest(c)]));
    const statement = provenanceStatement({
      image: `${cncf.hostPort}/${change.image ?? IMAGE}`,
      indexDigest: change.indexDigest ?? indexDigest,
      entry: { name: change.name ?? NAME, sha: change.sha ?? sha, tag: 'latest' },
      files,
      builder: { id: 'https://depot.ai/depot-ai-cli', version: 'test' },
      invocationId: change.invocationId,
      startedOn: new Date(),
      finishedOn: new Date(),
    });
    return signStatement(statement, key);
  }
});
