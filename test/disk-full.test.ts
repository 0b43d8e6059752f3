// A disk that fills up mid-build, for real: the store (or the download cache) on a small tmpfs.
// The build fails with one clear line, leaves no temp file, no new image and no tag, and the
// images already in the store stay whole. The disk fills at every stage of a build in turn
// (layer, oci-layout, config and manifests, index.json): nothing half-written stays.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildImage } from '../builder/build.ts';
import { FolderSource } from '../sources/folder.ts';
import { depotAi } from './helpers/cli.ts';
import { verifyStoredImage } from './helpers/estargz.ts';
import { sha256, startHubServer, type HubServer } from './helpers/hub-server.ts';
import { modelDir, pseudoRandomBytes, tempDir } from './helpers/models.ts';

/** A fresh tmpfs of `size` bytes (root only, as npm test runs in CI). */
function smallDisk(size: number): { dir: string; unmount(): void } {
  const dir = tempDir('depot-small-disk-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  return { dir, unmount: () => execFileSync('umount', [dir]) };
}

const WEIGHTS = pseudoRandomBytes(6 * 1024 * 1024, 21); // incompressible, larger than the disk

function assertOneLineDiskFull(run: { status: number | null; stderr: string }, name: string): void {
  assert.equal(run.status, 1);
  assert.equal(run.stderr.trim(), `depot-ai: ${name}: the disk is full`);
}

/** No temp file anywhere in the store, and every blob of every layout reachable from its index.json. */
function assertNothingHalfWritten(store: string): void {
  const temps = existsSync(path.join(store, '.tmp')) ? readdirSync(path.join(store, '.tmp')) : [];
  assert.deepEqual(temps, [], 'no temp blob');
  const all = readdirSync(store, { recursive: true }) as string[];
  assert.deepEqual(all.filter((f) => /\.tmp-/.test(f)), [], 'no temp index.json or oci-layout');
  for (const index of all.filter((f) => f.endsWith('index.json') && !f.includes('blobs'))) {
    const dir = path.join(store, path.dirname(index));
    const blob = (digest: string) => JSON.parse(readFileSync(path.join(dir, 'blobs/sha256', digest.slice(7)), 'utf8'));
    const referenced = new Set<string>();
    const visit = (d: { digest: string; mediaType: string }) => {
      referenced.add(d.digest);
      if (!/manifest|index/.test(d.mediaType)) return;
      const doc = blob(d.digest);
      for (const child of [...(doc.manifests ?? []), ...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])]) visit(child);
    };
    for (const d of JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8')).manifests) visit(d);
    const stored = readdirSync(path.join(dir, 'blobs/sha256')).map((h) => `sha256:${h}`);
    assert.deepEqual(stored.filter((d) => !referenced.has(d)), [], `${index}: unreferenced blobs`);
  }
}

describe('a disk that fills up', () => {
  test('the store: one clear line, nothing half-written, earlier images intact', async (t) => {
    const disk = smallDisk(2 * 1024 * 1024);
    t.after(() => disk.unmount());
    const store = path.join(disk.dir, 'store');
    const small = await depotAi(['build', 'disk/small', '--from', modelDir({ 'config.json': '{}' }), '--store', store]);
    assert.equal(small.status, 0, small.stderr);

    const run = await depotAi(['build', 'disk/big', '--from', modelDir({ 'model.bin': WEIGHTS }), '--store', store]);
    assertOneLineDiskFull(run, 'disk/big');
    assert.deepEqual(readdirSync(path.join(store, 'disk')), ['small'], 'no folder for the failed image');
    assert.deepEqual(readdirSync(path.join(store, '.tmp')), [], 'no temp file left');
    await verifyStoredImage(store, 'disk/small', 'latest');
  });

  test('wherever the disk fills, no temp file, no unreferenced blob, no image without a tag', async (t) => {
    const disk = smallDisk(4 * 1024 * 1024);
    t.after(() => disk.unmount());
    const store = path.join(disk.dir, 'store');
    const from = modelDir({ 'model.bin': pseudoRandomBytes(1024 * 1024, 5), 'config.json': '{}' });
    await buildImage({ name: 'disk/small', source: new FolderSource(modelDir({ 'a.txt': 'a' })), store, tag: 'v1' });
    await buildImage({ name: 'disk/big', source: new FolderSource(from), store, tag: 'old' }); // shares nothing with the new tag
    const freeBytes = () => {
      const s = statfsSync(disk.dir);
      return s.bavail * s.bsize;
    };
    const filler = path.join(disk.dir, 'filler');
    const outcomes = new Set<string>();
    // From "the layer does not fit" to "everything fits", one page of free space at a time.
    for (let free = 1024 * 1024 - 16 * 4096; free <= 1024 * 1024 + 48 * 4096; free += 4096) {
      rmSync(filler, { force: true });
      writeFileSync(filler, Buffer.alloc(Math.max(0, freeBytes() - free)));
      const tag = `t${free}`;
      const changed = modelDir({ 'model.bin': pseudoRandomBytes(1024 * 1024, free), 'config.json': '{}' });
      const result = await buildImage({ name: 'disk/big', source: new FolderSource(changed), store, tag }).then(
        () => 'built',
        (error: NodeJS.ErrnoException) => error.code ?? error.message,
      );
      outcomes.add(result);
      assert.ok(result === 'built' || result === 'ENOSPC', `free ${free}: ${result}`);
      assertNothingHalfWritten(store);
      const tags = (JSON.parse(readFileSync(path.join(store, 'disk/big/index.json'), 'utf8')).manifests as { annotations: Record<string, string> }[]).map(
        (d) => d.annotations['org.opencontainers.image.ref.name'],
      );
      assert.equal(tags.includes(tag), result === 'built', `free ${free}: tag ${tag} present only when built`);
      if (result === 'built') break;
    }
    assert.deepEqual([...outcomes].sort(), ['ENOSPC', 'built'], 'the sweep saw both a full disk and a build that fits');
    rmSync(filler, { force: true });
    await verifyStoredImage(store, 'disk/small', 'v1');
    await verifyStoredImage(store, 'disk/big', 'old');
  });

  describe('the download cache', () => {
    let hub: HubServer;
    before(async () => {
      hub = await startHubServer({ repos: [{ name: 'Disk/Model', commits: [{ files: { 'config.json': '{}', 'model.bin': WEIGHTS } }] }] });
    });
    after(() => hub?.close());

    test('one clear line, no image, the weights not in the cache', async (t) => {
      const disk = smallDisk(1024 * 1024);
      t.after(() => disk.unmount());
      const catalog = path.join(tempDir('depot-disk-catalog-'), 'models.yaml');
      writeFileSync(catalog, `models:\n  - name: Disk/Model\n    sha: ${hub.shas('Disk/Model')[0]}\n    tag: latest\n`);
      const store = tempDir('depot-disk-store-');
      const run = await depotAi(['build', 'Disk/Model', '--store', store, '--catalog', catalog], {
        HF_ENDPOINT: hub.url,
        HF_TOKEN: '',
        DEPOT_CACHE: disk.dir,
        DEPOT_RETRY_DELAY_MS: '20',
      });
      assertOneLineDiskFull(run, 'Disk/Model');
      assert.equal(existsSync(path.join(store, 'disk')), false, 'no image in the store');
      const cached = existsSync(path.join(disk.dir, 'sha256')) ? readdirSync(path.join(disk.dir, 'sha256')) : [];
      assert.ok(!cached.includes(sha256(WEIGHTS)), 'the weights are not in the cache');
    });
  });
});
