// Docker (Debian's dockerd 20.10 and /usr/bin/docker) against `serve`: `docker pull` of both
// platforms, and `docker build` of FROM scratch + COPY --from=<our image> (one file, and all of
// it) with the classic builder and with BuildKit; the built files are identical to the source.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { startDockerd, type Dockerd } from './helpers/docker.ts';
import { makeTestImage, startTestRegistry, tempDir, type TestImage, type TestRegistry } from './helpers/registry.ts';

const run = promisify(execFile);
let image: TestImage;
let registry: TestRegistry;
let dockerd: Dockerd;
let ref: string;

before(async () => {
  image = await makeTestImage({ name: 'docker/tiny-model', tag: 'v1' });
  registry = await startTestRegistry({ store: image.store });
  ref = `${registry.hostPort}/${image.name}:${image.tag}`;
  dockerd = await startDockerd();
});
after(async () => {
  await dockerd?.close();
  await registry?.close();
});

/** Every regular file under `dir`, by path relative to it. */
async function filesUnder(dir: string): Promise<Record<string, Buffer>> {
  const out: Record<string, Buffer> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const full = path.join(entry.parentPath ?? (entry as unknown as { path: string }).path, entry.name);
    out[path.relative(dir, full)] = await readFile(full);
  }
  return out;
}

describe('docker pull', () => {
  for (const arch of ['amd64', 'arm64']) {
    test(`--platform linux/${arch}: the image of that platform`, { timeout: 120_000 }, async () => {
      await dockerd.docker(['pull', '--platform', `linux/${arch}`, ref]);
      const inspected = JSON.parse(await dockerd.docker(['image', 'inspect', ref]))[0];
      assert.equal(inspected.Architecture, arch);
      assert.equal(inspected.Os, 'linux');
      assert.ok(inspected.RepoDigests.includes(`${registry.hostPort}/${image.name}@${image.index}`), JSON.stringify(inspected.RepoDigests));
      await dockerd.docker(['image', 'rm', ref]);
    });
  }
});

describe('docker build: FROM scratch + COPY --from', () => {
  for (const [builder, buildkit] of [['classic builder', '0'], ['BuildKit', '1']]) {
    test(`${builder}: the files are identical to the source`, { timeout: 180_000 }, async () => {
      const context = await tempDir('docker-ctx');
      await writeFile(path.join(context, 'Dockerfile'), ['FROM scratch', `COPY --from=${ref} /config.json /`, `COPY --from=${ref} / /all/`, ''].join('\n'));
      const tag = `depot-test/built-${buildkit}`;
      const built = await dockerd.docker(['build', '-t', tag, context], { DOCKER_BUILDKIT: buildkit });
      assert.equal(/^Step 1\/3 : FROM scratch$/m.test(built), buildkit === '0', 'the classic builder prints Steps, BuildKit does not');
      const container = (await dockerd.docker(['create', tag, 'none'])).trim();
      const out = path.join(context, 'out');
      await mkdir(out);
      const tar = path.join(context, 'fs.tar');
      await dockerd.docker(['export', '-o', tar, container]);
      await run('tar', ['-xf', tar, '-C', out]);
      await dockerd.docker(['rm', container]);
      const files = await filesUnder(out);
      assert.ok(files['config.json']?.equals(image.files['config.json']), '/config.json');
      for (const [file, bytes] of Object.entries(image.files)) assert.ok(files[`all/${file}`]?.equals(bytes), `/all/${file}`);
      const extra = Object.keys(files).filter((f) => f !== 'config.json' && !(f.startsWith('all/') && f.slice(4) in image.files));
      // A builder that is not lazy unpacks the layer as a plain tar, so eStargz's own two entries
      // (landmark, TOC) come along; docker export adds the runtime's files (/.dockerenv, /etc/hosts...).
      assert.deepEqual(extra.filter((f) => f.startsWith('all/')).sort(), ['all/.no.prefetch.landmark', 'all/stargz.index.json']);
      assert.deepEqual(extra.filter((f) => !f.startsWith('all/') && !/^(\.dockerenv|dev\/console|etc\/(hosts|hostname|resolv\.conf))$/.test(f)), []);
    });
  }
});

test('COPY --link needs a newer Dockerfile frontend than dockerd 20.10 carries (the README says so)', { timeout: 120_000 }, async () => {
  const context = await tempDir('docker-ln');
  await writeFile(path.join(context, 'Dockerfile'), ['FROM scratch', `COPY --link --from=${ref} /config.json /`, ''].join('\n'));
  await assert.rejects(dockerd.docker(['build', '-t', 'depot-test/linked', context], { DOCKER_BUILDKIT: '1' }), /Unknown flag: link/);
});
