// depot-ai cp against a lying registry (findings 2 and 5 of issue 9): every manifest is checked
// against the digest that named it, the TOC against the layer's toc.digest annotation, a streamed
// layer against its digest, and inflation is bounded by what the TOC states.
import assert from 'node:assert/strict';
import { existsSync, lstatSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { resourceUsage } from 'node:process';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { createGzip, gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { buildImage } from '../builder/build.ts';
import { readRemoteImageInfo, resolveLayer } from '../builder/image-info.ts';
import { cpCommand } from '../cli/cp.ts';
import { verifyCommand } from '../cli/verify.ts';
import { registryCredentials } from '../client/credentials.ts';
import { footer, TOC_TAR_NAME } from '../image/footer.ts';
import { ImageLayout } from '../image/layout.ts';
import { ANNOTATION, jsonBlob, MEDIA_TYPE, sha256Digest, type Descriptor, type ImageManifest } from '../image/oci.ts';
import { padding, tarHeader, tarTrailer } from '../image/tar.ts';
import { FolderSource } from '../sources/folder.ts';
import { sendBytes, startLyingServer, type LyingServer } from './helpers/lying-server.ts';
import { modelDir, pseudoRandomBytes, tempDir } from './helpers/models.ts';

/** A DOCKER_CONFIG folder holding `config` as its config.json. */
function dockerConfig(config: object): string {
  const dir = tempDir();
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

const CONFIG = jsonBlob(MEDIA_TYPE.config, { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } });

describe('cp verifies what a registry serves', () => {
  /** Path under /v2/lie/model/ -> bytes (and headers) the lying registry answers. */
  const routes = new Map<string, { bytes: Buffer; headers?: Record<string, string> }>();
  let server: LyingServer;
  let manifest: ImageManifest;
  let layerBytes: Buffer;
  /** How the lying registry misbehaves beyond its routes: ignores Range, or needs Basic credentials. */
  let quirk: { ignoreRange?: boolean; basic?: string } = {};
  /** Every Authorization header the lying registry was sent. */
  const authorizations: string[] = [];
  const weights = pseudoRandomBytes(300_000, 5);

  before(async () => {
    const store = tempDir('depot-lie-store-');
    await buildImage({ name: 'lie/model', source: new FolderSource(modelDir({ 'config.json': '{"a":1}\n', 'weights.bin': weights })), store, tag: 'latest' });
    const layout = new ImageLayout(store, 'lie/model');
    const resolved = (await resolveLayer(layout, 'latest'))!;
    const index = await layout.readJson<{ manifests: Descriptor[] }>(resolved.index.digest);
    manifest = await layout.readJson<ImageManifest>(index.manifests[0].digest);
    layerBytes = await layout.readBlob(resolved.layer.digest);
    server = await startLyingServer((req, res) => {
      if (req.headers.authorization) authorizations.push(req.headers.authorization);
      if (quirk.basic && req.headers.authorization !== quirk.basic) {
        res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="lie"' }).end();
        return;
      }
      if (quirk.ignoreRange) delete req.headers.range;
      const found = routes.get(req.url!.replace('/v2/lie/model/', ''));
      if (!found) {
        res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}');
        return;
      }
      sendBytes(req, res, found.bytes, found.headers);
    });
  });
  after(() => server?.close());

  /** Serve `m` under `reference` (and its digest), with its config and `layer` bytes. */
  function serveImage(reference: string, m: ImageManifest, layer = layerBytes, headers: Record<string, string> = {}): Descriptor {
    const blob = jsonBlob(MEDIA_TYPE.manifest, m);
    routes.set(`manifests/${reference}`, { bytes: blob.bytes, headers: { 'Content-Type': MEDIA_TYPE.manifest, ...headers } });
    routes.set(`manifests/${blob.descriptor.digest}`, { bytes: blob.bytes, headers: { 'Content-Type': MEDIA_TYPE.manifest } });
    routes.set(`blobs/${m.config.digest}`, { bytes: CONFIG.bytes });
    routes.set(`blobs/${m.layers[0].digest}`, { bytes: layer });
    return blob.descriptor;
  }

  const cp = (ref: string, file: string, dest = path.join(tempDir(), 'out')) => ({ dest, run: cpCommand(['--insecure', `${server.hostPort}/lie/model${ref}:/${file}`, dest]) });

  test('the honest image copies (the lying registry serves it right when it does not lie)', async () => {
    serveImage('latest', manifest);
    const { dest, run } = cp(':latest', 'weights.bin');
    assert.equal(await run, 0);
    assert.ok(readFileSync(dest).equals(weights));
  });

  test('a manifest whose digest is not the pinned @sha256 is refused', async () => {
    const pinned = sha256Digest('another manifest');
    const { bytes } = jsonBlob(MEDIA_TYPE.manifest, manifest);
    routes.set(`manifests/${pinned}`, { bytes, headers: { 'Content-Type': MEDIA_TYPE.manifest } });
    const { dest, run } = cp(`@${pinned}`, 'config.json');
    await assert.rejects(run, new RegExp(`has digest sha256:[0-9a-f]{64}, not ${pinned}`));
    assert.ok(!existsSync(dest));
  });

  test('a tag whose Docker-Content-Digest disagrees with the bytes is refused', async () => {
    serveImage('claimed', manifest, layerBytes, { 'Docker-Content-Digest': sha256Digest('something else') });
    await assert.rejects(cp(':claimed', 'config.json').run, /not sha256:.*refusing it/);
  });

  test('an index whose child manifest differs from its descriptor (digest, then size) is refused', async () => {
    const child = serveImage('unused', manifest);
    for (const [what, descriptor] of [
      ['digest', { ...child, digest: sha256Digest('not the child') }],
      ['size', { ...child, size: child.size + 1 }],
    ] as const) {
      routes.set(`manifests/${descriptor.digest}`, routes.get(`manifests/${child.digest}`)!);
      const index = jsonBlob(MEDIA_TYPE.index, { schemaVersion: 2, mediaType: MEDIA_TYPE.index, manifests: [{ ...descriptor, platform: { os: 'linux', architecture: 'amd64' } }] });
      routes.set('manifests/indexed', { bytes: index.bytes, headers: { 'Content-Type': MEDIA_TYPE.index } });
      await assert.rejects(cp(':indexed', 'config.json').run, what === 'digest' ? /has digest .* not sha256:/ : /bytes, its descriptor says/, what);
    }
  });

  test("a TOC that is not the one the layer's toc.digest annotation names is refused", async () => {
    const layer = { ...manifest.layers[0], annotations: { ...manifest.layers[0].annotations, [ANNOTATION.tocDigest]: sha256Digest('another toc') } };
    serveImage('toc', { ...manifest, layers: [layer] });
    await assert.rejects(cp(':toc', 'weights.bin').run, /its TOC has digest .*toc\.digest says sha256:/);
  });

  test('cp and the site reader trust a TOC only when the toc.digest annotation vouches for it (one rule)', async () => {
    const { [ANNOTATION.tocDigest]: _vouched, ...others } = manifest.layers[0].annotations ?? {};
    for (const [tag, annotations, files] of [
      ['vouched', manifest.layers[0].annotations, ['config.json', 'weights.bin']],
      ['unvouched', others, []],
      ['wrong', { ...others, [ANNOTATION.tocDigest]: sha256Digest('another toc') }, undefined],
    ] as const) {
      serveImage(tag, { ...manifest, layers: [{ ...manifest.layers[0], annotations }] });
      const info = readRemoteImageInfo(server.url, 'lie/model', tag);
      if (files) assert.deepEqual((await info)!.files.map((f) => f.path).sort(), files, tag);
      else await assert.rejects(info, /its TOC has digest .*toc\.digest says sha256:.*refusing it/, tag);
      const { dest, run } = cp(`:${tag}`, 'weights.bin');
      if (files) assert.equal(await run, 0, tag);
      else await assert.rejects(run, /refusing it/, tag);
      if (files) assert.ok(readFileSync(dest).equals(weights), tag);
    }
  });

  test('a streamed (non-eStargz) layer whose bytes are not its digest is refused, nothing kept', async () => {
    const content = Buffer.from('the file the attacker wants you to have\n');
    const fake = gzipSync(Buffer.concat([tarHeader({ name: 'config.json', type: 'file', size: content.length, mode: 0o644, mtime: 0 }), content, Buffer.alloc(padding(content.length)), tarTrailer()]));
    const layer = { mediaType: MEDIA_TYPE.layerGzip, digest: sha256Digest('the real layer'), size: fake.length };
    serveImage('plain', { ...manifest, layers: [layer] }, fake);
    const { dest, run } = cp(':plain', 'config.json');
    await assert.rejects(run, /got \d+ bytes with digest sha256:.*expected/);
    assert.ok(!existsSync(dest), 'nothing written');
    assert.deepEqual(readdirSync(path.dirname(dest)), [], 'no temp file left');
  });

  test('a whiteout in an upper layer removes files below it (OCI layer changesets), as docker and buildah show the image', async () => {
    const layerOf = (files: [string, string][]) =>
      gzipSync(Buffer.concat([...files.flatMap(([name, text]) => [tarHeader({ name, type: 'file', size: Buffer.byteLength(text), mode: 0o644, mtime: 0 }), Buffer.from(text), Buffer.alloc(padding(Buffer.byteLength(text)))]), tarTrailer()]));
    const lower = layerOf([['a.txt', 'secret\n'], ['dir/x.txt', 'x\n'], ['dir2/y.txt', 'y\n'], ['keep.txt', 'keep\n']]);
    const upper = layerOf([['.wh.a.txt', ''], ['dir/.wh..wh..opq', ''], ['.wh.dir2', ''], ['b.txt', 'b\n']]);
    const layers = [lower, upper].map((bytes) => ({ mediaType: MEDIA_TYPE.layerGzip, digest: sha256Digest(bytes), size: bytes.length }));
    serveImage('white', { ...manifest, layers }, lower);
    routes.set(`blobs/${layers[1].digest}`, { bytes: upper });
    for (const gone of ['a.txt', 'dir/x.txt', 'dir2/y.txt']) {
      const { dest, run } = cp(':white', gone);
      await assert.rejects(run, /is not in the image \(a layer removes it with a whiteout\)/, gone);
      assert.ok(!existsSync(dest));
    }
    for (const [kept, text] of [['keep.txt', 'keep\n'], ['b.txt', 'b\n']]) {
      const { dest, run } = cp(':white', kept);
      assert.equal(await run, 0);
      assert.equal(readFileSync(dest, 'utf8'), text);
    }
  });

  test('what an upper layer holds at a path hides the lower file: a link, a folder, a file where a folder was; names resolved as extraction does; a path twice is refused', async () => {
    type Entry = { name: string; type?: 'file' | 'directory' | 'symlink' | 'link'; text?: string; linkname?: string };
    const packed = async (entries: Entry[]) => {
      const tar = pack();
      for (const e of entries) tar.entry({ name: e.name, type: e.type ?? 'file', linkname: e.linkname, mode: 0o644 }, e.text ?? '');
      tar.finalize();
      const chunks: Buffer[] = [];
      for await (const chunk of tar) chunks.push(chunk as Buffer);
      return gzipSync(Buffer.concat(chunks));
    };
    const lower = await packed([{ name: 'a.txt', text: 'lower a\n' }, { name: 'sub/a.txt', text: 'lower sub/a\n' }, { name: 'b.txt', text: 'lower b\n' }]);
    const cases: [string, Entry[], string, RegExp][] = [
      ['symlink', [{ name: 'a.txt', type: 'symlink', linkname: 'b.txt' }], 'a.txt', /\/a\.txt is a symlink in the image, not a file/],
      ['hard link', [{ name: 'b.txt', text: 'upper b\n' }, { name: 'a.txt', type: 'link', linkname: 'b.txt' }], 'a.txt', /\/a\.txt is a link in the image, not a file/],
      ['folder', [{ name: 'a.txt/', type: 'directory' }], 'a.txt', /\/a\.txt is a folder in the image, not a file/],
      ['file above', [{ name: 'sub', text: 'now a file\n' }], 'sub/a.txt', /\/sub\/a\.txt is not in the image \(\/sub is a file, not a folder\)/],
      ['whiteout with ..', [{ name: 'x/../.wh.a.txt' }], 'a.txt', /a layer removes it with a whiteout/],
      ['whiteout with //', [{ name: 'sub//.wh.a.txt' }], 'sub/a.txt', /a layer removes it with a whiteout/],
      ['twice', [{ name: 'a.txt', text: 'one\n' }, { name: './a.txt', text: 'two\n' }], 'a.txt', /\/a\.txt appears twice in the layer/],
    ];
    for (const [what, entries, file, message] of cases) {
      const upper = await packed(entries);
      const layers = [lower, upper].map((bytes) => ({ mediaType: MEDIA_TYPE.layerGzip, digest: sha256Digest(bytes), size: bytes.length }));
      serveImage(`shadow-${what.replace(/\W+/g, '-')}`, { ...manifest, layers }, lower);
      routes.set(`blobs/${layers[1].digest}`, { bytes: upper });
      const { dest, run } = cp(`:shadow-${what.replace(/\W+/g, '-')}`, file);
      await assert.rejects(run, message, what);
      assert.ok(!existsSync(dest), `${what}: nothing written`);
    }
  });

  test('a registry that ignores Range (200 for every range) gets the verified streamed copy', async () => {
    serveImage('latest', manifest);
    quirk = { ignoreRange: true };
    try {
      const { dest, run } = cp(':latest', 'weights.bin');
      assert.equal(await run, 0);
      assert.ok(readFileSync(dest).equals(weights));
    } finally {
      quirk = {};
    }
  });

  test("cp and verify send the docker config's credentials for this host, never the environment's pair meant for the push target", async () => {
    serveImage('latest', manifest);
    quirk = { basic: `Basic ${Buffer.from('u:p').toString('base64')}` };
    const saved = { ...process.env };
    try {
      // The environment's pair is for `build --push` / `serve --upstream` only: a registry an image
      // reference names asks for Basic auth and gets nothing (issue 9, a trap registry).
      process.env = { ...saved, DOCKER_CONFIG: dockerConfig({}), DEPOT_REGISTRY_USERNAME: 'u', DEPOT_REGISTRY_PASSWORD: 'p' };
      authorizations.length = 0;
      await assert.rejects(cp(':latest', 'config.json').run, /authentication failed/);
      assert.equal(await verifyCommand(['--insecure', `${server.hostPort}/lie/model:latest`]), 1);
      assert.equal(authorizations.join(), '', 'no credentials sent to a registry they were not meant for');
      process.env = { ...saved, DOCKER_CONFIG: dockerConfig({ auths: { [server.hostPort]: { auth: Buffer.from('u:p').toString('base64') } } }) };
      delete process.env.DEPOT_REGISTRY_USERNAME;
      const { dest, run } = cp(':latest', 'config.json');
      assert.equal(await run, 0);
      assert.equal(readFileSync(dest, 'utf8'), '{"a":1}\n');
      assert.ok(authorizations.includes(quirk.basic!));
      // The docker config is per host: another host's entry is not sent here.
      process.env = { ...saved, DOCKER_CONFIG: dockerConfig({ auths: { 'other.example:5000': { auth: Buffer.from('u:p').toString('base64') } } }) };
      authorizations.length = 0;
      await assert.rejects(cp(':latest', 'config.json').run, /authentication failed/);
      assert.equal(authorizations.join(), '');
    } finally {
      process.env = saved;
      quirk = {};
    }
  });

  test("the environment's pair goes to the configured registry (push target, upstream) only", async () => {
    const env = { DEPOT_REGISTRY_USERNAME: 'u', DEPOT_REGISTRY_PASSWORD: 'p', DOCKER_CONFIG: dockerConfig({}) };
    assert.deepEqual(await registryCredentials('push.example', { env, configured: true }), { username: 'u', password: 'p' });
    assert.equal(await registryCredentials('push.example', { env }), undefined);
  });

  test('links planted at the destination or beside it are replaced, never written through', async () => {
    serveImage('latest', manifest);
    const dir = tempDir();
    const victim = path.join(tempDir(), 'victim.txt');
    writeFileSync(victim, 'untouched');
    const dest = path.join(dir, 'config.json');
    symlinkSync(victim, dest);
    for (const name of [`config.json.depot-${process.pid}.tmp`, '.depot-cp-', 'file']) symlinkSync(victim, path.join(dir, name));
    assert.equal(await cp(':latest', 'config.json', dest).run, 0);
    assert.equal(readFileSync(victim, 'utf8'), 'untouched');
    assert.ok(!lstatSync(dest).isSymbolicLink());
    assert.equal(readFileSync(dest, 'utf8'), '{"a":1}\n');
  });

  /** An eStargz layer by hand: `data` (one gzip member) holds the file, then the TOC member and the footer. */
  function handLayer(data: Buffer, tocTar: Buffer): { layer: Descriptor; bytes: Buffer } {
    const toc = gzipSync(tocTar);
    const bytes = Buffer.concat([data, toc, footer(data.length)]);
    const json = tocTar.subarray(512, 512 + Number.parseInt(tocTar.subarray(124, 136).toString('ascii'), 8));
    return { bytes, layer: { mediaType: MEDIA_TYPE.layerGzip, digest: sha256Digest(bytes), size: bytes.length, annotations: { [ANNOTATION.tocDigest]: sha256Digest(json) } } };
  }

  function tocTar(json: Buffer): Buffer {
    return Buffer.concat([tarHeader({ name: TOC_TAR_NAME, type: 'file', size: json.length, mode: 0o644, mtime: 0 }), json, Buffer.alloc(padding(json.length)), tarTrailer()]);
  }

  /** gzip of `size` zero bytes, made in constant memory. */
  async function zeros(size: number): Promise<Buffer> {
    const block = Buffer.alloc(1 << 20);
    const parts: Buffer[] = [];
    const gzip = createGzip({ level: 1 });
    const source = Readable.from((function* () { for (let i = 0; i < size / block.length; i++) yield block; })());
    for await (const part of source.pipe(gzip)) parts.push(part as Buffer);
    return Buffer.concat(parts);
  }

  test('a chunk that inflates far beyond the size its TOC states costs no more than that size', async () => {
    const stated = 1 << 20;
    const bomb = await zeros(512 << 20); // 512 MiB of zeros in ~0.5 MiB
    const toc = { version: 1, entries: [{ name: 'big.bin', type: 'reg', size: stated, offset: 0, chunkDigest: sha256Digest(Buffer.alloc(stated)) }] };
    const { layer, bytes } = handLayer(bomb, tocTar(Buffer.from(JSON.stringify(toc))));
    serveImage('bomb', { ...manifest, layers: [layer] }, bytes);
    const before = resourceUsage().maxRSS;
    const { dest, run } = cp(':bomb', 'big.bin');
    assert.equal(await run, 0);
    assert.equal(readFileSync(dest).length, stated);
    const grew = (resourceUsage().maxRSS - before) / 1024;
    assert.ok(grew < 200, `peak memory grew by ${grew.toFixed(0)} MiB for a 1 MiB file`);
  });

  test('a one-chunk gzip bomb costs bounded memory whatever size its TOC states; nothing is kept', async () => {
    for (const stated of [4 << 20, 16 << 20, 256 << 20]) {
      const toc = { version: 1, entries: [{ name: 'big.bin', type: 'reg', size: stated, offset: 0, chunkDigest: sha256Digest('not these bytes') }] };
      const { layer, bytes } = handLayer(await zeros(stated), tocTar(Buffer.from(JSON.stringify(toc))));
      serveImage('bomb', { ...manifest, layers: [layer] }, bytes);
      const before = resourceUsage().maxRSS;
      const { dest, run } = cp(':bomb', 'big.bin');
      // Up to 16 MiB chunks are fetched by range and fail on their digest; larger ones are
      // streamed with the layer (whose digest is right) and are not a file in its tar.
      await assert.rejects(run, stated <= 16 << 20 ? /the chunk at 0 has digest sha256:.*the TOC says/ : /not in the image/, `${stated}`);
      const grew = (resourceUsage().maxRSS - before) / 1024;
      assert.ok(grew < 100, `peak memory grew by ${grew.toFixed(0)} MiB for a chunk stated as ${stated} bytes`);
      assert.deepEqual(readdirSync(path.dirname(dest)), [], 'nothing kept');
    }
  });

  test('a TOC that inflates beyond 64 MiB is refused with one clear error', async () => {
    const claimed = 512 << 20;
    const header = tarHeader({ name: TOC_TAR_NAME, type: 'file', size: claimed, mode: 0o644, mtime: 0 });
    const body = gzipSync(Buffer.concat([header, Buffer.alloc(80 << 20)]), { level: 1 });
    const bytes = Buffer.concat([gzipSync(Buffer.alloc(0)), body, footer(20)]);
    const layer = { mediaType: MEDIA_TYPE.layerGzip, digest: sha256Digest(bytes), size: bytes.length, annotations: { [ANNOTATION.tocDigest]: sha256Digest('x') } };
    serveImage('tocbomb', { ...manifest, layers: [layer] }, bytes);
    await assert.rejects(cp(':tocbomb', 'big.bin').run, /cannot be read: the eStargz TOC inflates to more than the 67108864 bytes allowed/);
  });
});
