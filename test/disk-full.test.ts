// A disk that fills up mid-build, for real: the store (or the download cache) on a small tmpfs.
// The build fails with one clear line, leaves no temp file, no new image and no tag, and the
// images already in the store stay whole.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
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
