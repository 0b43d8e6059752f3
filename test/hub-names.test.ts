// Hub file paths that are hostile as URL or Dockerfile text (issue 9, finding 8): spaces, `?#%`,
// glob characters, sub-delims, unicode, 100+ byte names, deep folders. Each must round-trip
// Hub listing -> download (percent-encoded resolve URL) -> layer -> the reference estargz reader ->
// our registry -> a buildah `COPY --from=` of the whole image and of one such file.
import assert from 'node:assert/strict';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildImage } from '../builder/build.ts';
import { readImageInfo } from '../builder/image-info.ts';
import { hubResolveUrl } from '../sources/hub-url.ts';
import { HuggingFaceSource } from '../sources/huggingface.ts';
import { verifyStoredImage } from './helpers/estargz.ts';
import { startHubServer, type HubServer } from './helpers/hub-server.ts';
import { pseudoRandomBytes, tempDir } from './helpers/models.ts';
import { runTool, startTestRegistry, tool } from './helpers/registry.ts';

const HOSTILE = [' ', '?', '#', '%', '%41', '%2F', '[', ']', '*', '+', '&', '=', ';', "'", '(', ')', '!', '@', '$', ',', '~', ':', 'é', '权', '✓', '😀'];

/** Generated paths: every hostile character alone and in combination, long names, deep folders. */
function hostilePaths(): string[] {
  const paths = HOSTILE.map((c, i) => `single/${i}-a${c}b.txt`);
  for (let i = 0; i < 8; i++) {
    const mix = Array.from({ length: 5 }, (_, j) => HOSTILE[(i * 7 + j * 11) % HOSTILE.length]).join('x');
    paths.push(`mix ${i}${HOSTILE[i]}/w${mix}.bin`);
  }
  paths.push('C1_or_C2?_premise/a.json', 'hash#tag/b#c.json', 'pct%/100%.txt', 'weights[0].bin', 'a*.bin');
  paths.push(`long/${'ä'.repeat(60)}.txt`, `long/${'n'.repeat(120)}?.bin`);
  paths.push(Array.from({ length: 14 }, (_, i) => `d${i}${HOSTILE[i]}`).join('/') + '/deep #?.txt');
  return paths;
}

/**
 * Dockerfile COPY sources are Go filepath.Match patterns (`*`, `?`, `[`, `\` become classes) after
 * variable substitution and quote removal (`$`, `'` and `"` get the Dockerfile escape character).
 */
const escapeCopySource = (p: string) => p.replace(/[*?[\\]/g, (c) => `[${c}]`).replace(/[$'"]/g, '\\$&');

describe('Hub paths with URL and glob characters (finding 8)', () => {
  let hub: HubServer;
  const files: Record<string, Buffer> = {};
  hostilePaths().forEach((p, i) => (files[p] = pseudoRandomBytes(p.endsWith('.bin') ? 150_000 + i : 100 + i, i + 1)));
  const dirs: string[] = [];
  before(async () => {
    hub = await startHubServer({ repos: [{ name: 'Odd/Names', commits: [{ files }] }] });
  });
  after(async () => {
    await hub?.close();
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  test('hubResolveUrl encodes each segment; the URL parser keeps the path whole', () => {
    for (const p of Object.keys(files)) {
      const url = new URL(hubResolveUrl('http://hub.test/', 'Odd/Names', 'main', p));
      assert.equal(url.search, '', p);
      assert.equal(url.hash, '', p);
      const segments = url.pathname.split('/').slice(5).map(decodeURIComponent);
      assert.deepEqual(segments, p.split('/'), p);
    }
    for (const bad of ['a//b', '../x', 'a/./b', '/abs', 'dir/']) assert.throws(() => hubResolveUrl('http://hub.test', 'o/n', 'main', bad), /cannot be part of a file path/);
  });

  test('every file is listed, downloaded, layered and read back byte for byte; buildah copies them', async () => {
    const store = tempDir('depot-odd-store-');
    const cache = tempDir('depot-odd-cache-');
    dirs.push(store, cache);
    const sha = hub.head('Odd/Names');
    const source = new HuggingFaceSource('Odd/Names', sha, { hubUrl: hub.url, token: '', cache });
    await buildImage({ name: 'Odd/Names', source, store, tag: 'v1', sha });
    const info = await readImageInfo(store, 'odd/names', 'v1');
    assert.deepEqual(info!.files.map((f) => f.path).sort(), Object.keys(files).sort());
    const report = await verifyStoredImage(store, 'odd/names', 'v1');
    assert.equal(report.bytes, Object.values(files).reduce((n, b) => n + b.length, 0) + 1, 'every byte, plus the landmark');

    const registry = await startTestRegistry({ store });
    const dir = tempDir('depot-odd-buildah-');
    dirs.push(dir);
    const storage = ['--root', path.join(dir, 'root'), '--runroot', path.join(dir, 'run'), '--storage-driver', 'vfs'];
    const env = { CONTAINERS_REGISTRIES_CONF: path.join(dir, 'registries.conf'), BUILDAH_ISOLATION: 'chroot' };
    const buildah = tool('/usr/bin/buildah');
    try {
      await writeFile(env.CONTAINERS_REGISTRIES_CONF, `[[registry]]\nlocation = "${registry.hostPort}"\ninsecure = true\n`);
      const from = `${registry.hostPort}/odd/names:v1`;
      // buildah 1.28 unescapes a `[[]` class once before globbing (BuildKit does not), so names with
      // `[` are checked through the whole-image COPY only.
      const ones = ['C1_or_C2?_premise/a.json', 'a*.bin', ...Object.keys(files).filter((p) => /^(mix|d0)/.test(p) && !p.includes('['))];
      await mkdir(path.join(dir, 'context'));
      await writeFile(
        path.join(dir, 'context', 'Dockerfile'),
        ['FROM scratch', `COPY --from=${from} / /all/`, ...ones.map((p, i) => `COPY --from=${from} ${JSON.stringify(['/' + escapeCopySource(p), `/one${i}/`])}`), ''].join('\n'),
      );
      await runTool(buildah, [...storage, 'build', '--isolation', 'chroot', '--tls-verify=false', '-t', 'odd', path.join(dir, 'context')], env);
      const { stdout: container } = await runTool(buildah, [...storage, 'from', 'odd'], env);
      const { stdout: mount } = await runTool(buildah, [...storage, 'mount', container.trim()], env);
      for (const [p, bytes] of Object.entries(files)) assert.ok((await readFile(path.join(mount.trim(), 'all', p))).equals(bytes), `${p} differs`);
      for (const [i, p] of ones.entries()) {
        assert.ok((await readFile(path.join(mount.trim(), `one${i}`, path.basename(p)))).equals(files[p]), `COPY of ${p}`);
      }
      await runTool(buildah, [...storage, 'umount', container.trim()], env);
    } finally {
      await runTool(buildah, [...storage, 'rmi', '--all', '--force'], env).catch(() => {});
      await registry.close();
    }
  });
});
