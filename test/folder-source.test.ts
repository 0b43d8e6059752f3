// A `--from` folder read as a hostile or careless user leaves it (issue 9, findings 11-13):
// symbolic links that lead out of the folder, Hugging Face cache snapshots whose links must keep
// working, names eStargz reserves, and names that are not UTF-8.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { readImageInfo } from '../builder/image-info.ts';
import { FolderSource } from '../sources/folder.ts';
import { depotAi } from './helpers/cli.ts';
import { verifyStoredImage } from './helpers/estargz.ts';
import { modelDir, tempDir } from './helpers/models.ts';

/** Builds `dir` with the CLI into a fresh store: exit status, stderr and the store. */
async function build(name: string, dir: string) {
  const store = tempDir('depot-store-');
  const run = await depotAi(['build', name, '--from', dir, '--store', store]);
  return { ...run, store };
}

function assertRefused(run: { status: number | null; stderr: string; store: string }, message: RegExp): void {
  assert.notEqual(run.status, 0);
  assert.match(run.stderr, message);
  assert.equal(run.stderr.trim().split('\n').length, 1, `one line:\n${run.stderr}`);
  assert.deepEqual(readdirSync(run.store).filter((e) => e !== '.tmp'), [], 'nothing in the store');
}

describe('symbolic links (finding 11)', () => {
  // Every way out of the folder: absolute, relative, through a linked folder, through a chain.
  const outside = modelDir({ 'secret.txt': 'host file' });
  const escapes: [string, (dir: string) => void][] = [
    ['an absolute link to /etc/passwd', (d) => symlinkSync('/etc/passwd', path.join(d, 'passwd'))],
    ['an absolute link to a file outside', (d) => symlinkSync(path.join(outside, 'secret.txt'), path.join(d, 'x.bin'))],
    ['a relative link climbing out', (d) => symlinkSync(path.relative(d, path.join(outside, 'secret.txt')), path.join(d, 'x.bin'))],
    ['a link in a subfolder climbing out', (d) => (mkdirSync(path.join(d, 'sub')), symlinkSync('../../' + path.basename(outside) + '/secret.txt', path.join(d, 'sub/x.bin')))],
    ['a linked folder outside', (d) => symlinkSync(outside, path.join(d, 'linked-dir'))],
    ['a link to the parent folder', (d) => symlinkSync('..', path.join(d, 'up'))],
    ['a chain that ends outside', (d) => (symlinkSync('hop2', path.join(d, 'hop1')), symlinkSync(path.join(outside, 'secret.txt'), path.join(d, 'hop2')))],
  ];
  for (const [what, make] of escapes) {
    test(`${what}: refused, naming the link`, async () => {
      const dir = modelDir({ 'model.bin': 'weights' });
      make(dir);
      await assert.rejects(new FolderSource(dir).list(), /symbolic link to .*, outside .*; copy the file in or remove the link/);
    });
  }

  test('the CLI refuses /etc/passwd in one line and stores nothing', async () => {
    const dir = modelDir({ 'model.bin': 'weights' });
    symlinkSync('/etc/passwd', path.join(dir, 'passwd'));
    assertRefused(await build('bad/escape', dir), /passwd: symbolic link to \/etc\/passwd, outside /);
  });

  test('links that stay inside the folder are followed; a loop is an error', async () => {
    const dir = modelDir({ 'model.bin': 'weights', 'sub/a.txt': 'a' });
    symlinkSync('model.bin', path.join(dir, 'relative.bin'));
    symlinkSync(path.join(dir, 'sub'), path.join(dir, 'linked-sub'));
    const files = (await new FolderSource(dir).list()).map((f) => f.path).sort();
    assert.deepEqual(files, ['linked-sub/a.txt', 'model.bin', 'relative.bin', 'sub/a.txt']);
    symlinkSync('..', path.join(dir, 'sub/loop'));
    await assert.rejects(new FolderSource(dir).list(), /loop: symbolic link back to .*\(a loop\)/);
  });

  test('a Hugging Face cache snapshot (links into ../../blobs/) builds; links elsewhere in the cache do not', async () => {
    const cache = tempDir('depot-hf-cache-');
    const repo = path.join(cache, 'models--owner--model');
    const snapshot = path.join(repo, 'snapshots', '1dbc166cf8765166998eff31ade2eb64c8a40076');
    mkdirSync(path.join(repo, 'blobs'), { recursive: true });
    mkdirSync(path.join(snapshot, 'sub'), { recursive: true });
    writeFileSync(path.join(repo, 'blobs', 'aaaa'), 'weights');
    writeFileSync(path.join(repo, 'blobs', 'bbbb'), '{}');
    symlinkSync('../../blobs/aaaa', path.join(snapshot, 'model.bin'));
    symlinkSync('../../../blobs/bbbb', path.join(snapshot, 'sub', 'config.json'));
    const run = await build('owner/model', snapshot);
    assert.equal(run.status, 0, run.stderr);
    const info = await readImageInfo(run.store, 'owner/model', 'latest');
    assert.deepEqual(info!.files.map((f) => [f.path, f.size]), [['model.bin', 7], ['sub/config.json', 2]]);
    await verifyStoredImage(run.store, 'owner/model', 'latest');
    // Another repository's blobs are outside this snapshot's repository.
    const other = path.join(cache, 'models--other--model', 'blobs');
    mkdirSync(other, { recursive: true });
    writeFileSync(path.join(other, 'cccc'), 'other');
    symlinkSync(path.join(other, 'cccc'), path.join(snapshot, 'other.bin'));
    await assert.rejects(new FolderSource(snapshot).list(), /other\.bin: symbolic link to .*, outside .* and its Hugging Face cache folder .*models--owner--model/);
  });

  test('a broken link says what is missing', async () => {
    const dir = modelDir({ 'model.bin': 'weights' });
    symlinkSync('/nonexistent/target', path.join(dir, 'broken.bin'));
    await assert.rejects(new FolderSource(dir).list(), /broken\.bin: broken symbolic link, its target \/nonexistent\/target does not exist/);
  });
});

describe('names eStargz reserves (finding 12)', () => {
  for (const name of ['.prefetch.landmark', '.no.prefetch.landmark', 'stargz.index.json']) {
    test(`${name} at the top is refused; in a folder it is an ordinary file`, async () => {
      assertRefused(await build('bad/reserved', modelDir({ [name]: 'x', 'a.txt': 'a' })), new RegExp(`${name.replace(/\./g, '\\.')} is reserved by the eStargz format at the top of a layer`));
      const nested = await build('ok/nested', modelDir({ [`sub/${name}`]: 'x', 'a.txt': 'a' }));
      assert.equal(nested.status, 0, nested.stderr);
      const info = await readImageInfo(nested.store, 'ok/nested', 'latest');
      assert.deepEqual(info!.files.map((f) => f.path), ['a.txt', `sub/${name}`]);
    });
  }
});

describe('names that are not UTF-8 (finding 13)', () => {
  // Invalid sequences of each kind: stray continuation, truncated, overlong, surrogate, out of range.
  const invalid = [[0x80], [0xff], [0xc3], [0xe2, 0x82], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xfe, 0xfe]];
  for (const bytes of invalid) {
    test(`a name holding ${Buffer.from(bytes).toString('hex')} is reported as not UTF-8`, async () => {
      const dir = modelDir({ 'model.bin': 'weights', 'sub/ok.txt': 'ok' });
      const name = Buffer.concat([Buffer.from('w-'), Buffer.from(bytes), Buffer.from('.bin')]);
      writeFileSync(Buffer.concat([Buffer.from(path.join(dir, 'sub') + '/'), name]), 'x');
      await assert.rejects(new FolderSource(dir).list(), new RegExp(`sub/w-.*\\.bin: file name is not valid UTF-8 \\(bytes ${name.toString('hex')}\\); rename it`));
    });
  }

  test('the CLI says so in one line, not "broken symbolic link"', async () => {
    const dir = modelDir({ 'model.bin': 'weights' });
    writeFileSync(Buffer.concat([Buffer.from(dir + '/'), Buffer.from([0x66, 0xff, 0x2e, 0x62])]), 'x');
    assertRefused(await build('bad/utf8', dir), /file name is not valid UTF-8/);
  });

  test('valid unicode names are kept', async () => {
    const dir = modelDir({ 'modèle/权重 ✓.bin': 'w', '😀.txt': 'e' });
    assert.deepEqual((await new FolderSource(dir).list()).map((f) => f.path).sort(), ['modèle/权重 ✓.bin', '😀.txt'].sort());
  });
});

describe('whiteout names (red team, issue 14 F3)', () => {
  for (const path of ['.wh.ghost', 'sub/.wh..wh..opq', '.wh.dir/a.txt', 'a/b/.wh.x.bin']) {
    test(`${path}: refused with one line naming it, nothing built`, async () => {
      const run = await build('bad/whiteout', modelDir({ [path]: 'x', 'a.txt': 'a' }));
      assertRefused(run, new RegExp(`${path.replace(/\./g, '\\.')}: a name starting with "\\.wh\\." is a whiteout in an OCI layer`));
    });
  }
  test('".wh" without the dot, or ".wh." inside a name, is an ordinary file', async () => {
    const run = await build('ok/wh', modelDir({ '.wh': 'x', 'x.wh.y': 'y', 'sub/a.wh.b': 'z' }));
    assert.equal(run.status, 0, run.stderr);
    const info = await readImageInfo(run.store, 'ok/wh', 'latest');
    assert.deepEqual(info!.files.map((f) => f.path).sort(), ['.wh', 'sub/a.wh.b', 'x.wh.y']);
  });
});
