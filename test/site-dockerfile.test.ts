// Finding 9 of issue 9: every path in a COPY line is escaped for the Dockerfile lexer and for
// filepath.Match patterns, so `weights[0].bin` copies that file and never `weights0.bin`. Checked
// on generated names by decoding the line as the lexer and the matcher read it, and for real by
// builds with buildah, BuildKit and the classic builder from an image whose siblings the
// unescaped globs would match. A name no line names exactly in all of them (issue 14: a
// backslash, a `[`, a name that read as a pattern matches a sibling) gets no line.
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { copyLine, copySource, listing, unnamed } from '../site/lib/dockerfile.ts';
import { copyFolder } from '../site/lib/snippets.ts';
import { buildImage, pseudoRandom, startTestRegistry, tempDir, type TestRegistry } from './helpers/registry.ts';
import { buildahRoot } from './helpers/site-buildah.ts';
import { startDockerd, type Dockerd } from './helpers/site-docker.ts';

const SPECIAL = '*?[]$\'"{}#!~^-_. ';
const ALPHABET = 'abc09' + SPECIAL + 'üß字';

/** `count` names of 1-12 characters from ALPHABET, each holding at least one special character (seeded). */
function generatedNames(seed: string, count: number, extra = ''): string[] {
  const bytes = pseudoRandom(seed, count * 16);
  const alphabet = [...ALPHABET + extra];
  const names = new Set<string>();
  for (let i = 0; names.size < count && i < count * 4; i++) {
    const b = bytes.subarray((i * 16) % bytes.length, ((i * 16) % bytes.length) + 16);
    let name = [...b.subarray(0, 1 + (b[15] % 12))].map((x) => alphabet[x % alphabet.length]).join('');
    if (!/[*?[\]$'"\\ ]/.test(name)) name += '[0]';
    name = name.trim();
    if (name && name !== '.' && name !== '..') names.add(name + '.bin');
  }
  return [...names];
}

/** The Dockerfile lexer on one word: `\c` is `c`; an unescaped `$` or quote would expand or quote. */
function lex(word: string): string {
  let out = '';
  for (let i = 0; i < word.length; i++) {
    if (word[i] === '\\') out += word[++i];
    else if (/[$'"]/.test(word[i])) throw new Error(`unescaped ${word[i]} in ${word}`);
    else out += word[i];
  }
  return out;
}

/** The one path a filepath.Match pattern can match, or an error when it could match more than one. */
function literal(pattern: string): string {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') out += pattern[++i];
    else if (c === '[') {
      const close = pattern.indexOf(']', i + 2);
      const body = pattern.slice(i + 1, close);
      if (close < 0 || [...body].length !== 1 || body === '^' || body === '\\') throw new Error(`class ${pattern.slice(i)} is not one literal character`);
      out += body;
      i = close;
    } else if (c === '*' || c === '?') throw new Error(`wildcard ${c} in ${pattern}`);
    else out += c;
  }
  return out;
}

/** The source words of a COPY line, in either form. */
function sources(line: string): string[] {
  const rest = line.replace(/^COPY --link --from=\S+ /, '');
  const words = rest.startsWith('[') ? (JSON.parse(rest) as string[]) : rest.split(' ');
  return words.slice(0, -1);
}

describe('COPY sources are escaped for the lexer and for patterns', () => {
  test('the issue’s case: weights[0].bin', () => {
    assert.equal(copyLine('r', ['weights[0].bin'], '.'), 'COPY --link --from=r /weights[[]0].bin .');
  });

  test('generated names (specials, spaces, quotes, backslashes, unicode, deep paths) decode to exactly themselves', () => {
    const names = generatedNames('lexer', 400, '\\');
    names.push('a/b c/d[1]/e*.bin', 'x'.repeat(120) + '[0]', '$HOME/${x}', '\\[*]');
    for (const name of names) {
      const line = copyLine('depot.ai/x:latest', [name], '.');
      assert.doesNotMatch(line, /\n/);
      const [word] = sources(line);
      assert.equal(literal(lex(word)), '/' + name, `${JSON.stringify(name)} as ${line}`);
      if (/\s/.test(name)) assert.match(line, /\["/, `${JSON.stringify(name)}: JSON form`);
    }
  });

  test('several sources in one line keep their order and form', () => {
    const line = copyLine('r', ['a b/c', 'd*'], 'x/');
    assert.equal(line, 'COPY --link --from=r ["/a b/c", "/d[*]", "x/"]');
    assert.deepEqual(sources(line).map((w) => literal(lex(w))), ['/a b/c', '/d*']);
    assert.equal(copySource('/already/absolute'), '/already/absolute');
  });
});

describe('real builds (buildah, BuildKit, the classic builder) copy exactly the named files', () => {
  let registry: TestRegistry;
  let dockerd: Dockerd;
  let dir: string;
  // Every kind of character a name can hold: pattern and lexer specials, space, unicode, a
  // leading dash, control characters. Generated names get the siblings their unescaped globs
  // would match (so buildah's second reading of a matched path collides for some); the fixed
  // names have none, so each special character is also seen where a line can name it.
  const CONTROLS = '\n\t\u0001';
  const fixed = ['-lead.bin', 'a\\b.bin', 'sp ace.bin', "it's.bin", 'q"uote.bin', 'q?.bin', 'star*.bin', 'x]y.bin', 'dollar$x.bin', 'ü字.bin', 'nl\nx.bin', 'tab\tx.bin', 'ctl\u0001.bin', 'w[0].bin', 'ab.bin'];
  const generated = generatedNames('builders', 24, '\\-' + CONTROLS);
  const siblings = generated.map((n) => n.replace(/[[\]\\]/g, '').replace(/[*?]/g, 'x')).filter((n) => n && !generated.includes(n) && !fixed.includes(n));
  const all = [...new Set([...fixed, ...generated, ...siblings])];
  // Folders with the same kinds of names (issue 14, F2: `?` or a control character in a folder
  // name), each holding a file and a sub-folder: a folder line copies exactly its contents.
  const folders = [...new Set(['q?dir', 'ctl\u0001dir', 'tab\tdir', 'nl\ndir', 'sp ace dir', 'star*dir', ...generatedNames('folders', 12, '-' + CONTROLS).map((n) => n.replace(/\.bin$/, '.d'))])].filter((n) => !all.includes(n));
  const inFolder = (folder: string) => [`${folder}/in.txt`, `${folder}/sub/deep.txt`];
  const files = new Map([...all, ...folders.flatMap(inFolder)].map((n) => [n, Buffer.from(`content of ${JSON.stringify(n)}\n`)]));
  const list = listing([...files.keys()]);
  const named = all.filter((n) => !unnamed(n, list));
  const namedFolders = folders.filter((n) => !unnamed(n, list));

  before(async () => {
    dir = await tempDir('site-dockerfile');
    const source = path.join(dir, 'source');
    await mkdir(source);
    for (const [name, bytes] of files) {
      await mkdir(path.dirname(path.join(source, name)), { recursive: true });
      await writeFile(path.join(source, name), bytes);
    }
    await buildImage('site/escapes', source, path.join(dir, 'store'));
    registry = await startTestRegistry({ store: path.join(dir, 'store') });
    dockerd = await startDockerd();
  });
  after(async () => {
    await dockerd?.close();
    await registry?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('which names get no line: every backslash and `[`, and names whose own reading as a pattern matches a sibling', () => {
    for (const name of all) {
      if (/[\\[]/.test(name)) assert.ok(unnamed(name, list), `${JSON.stringify(name)}: buildah reads the matched path as a pattern`);
    }
    assert.match(unnamed('a\\b.bin', list)!, /backslash/);
    assert.match(unnamed('w[0].bin', list)!, /does not match itself/);
    // A sibling the name, read as a pattern, matches: `star*.bin` beside `starx.bin`.
    assert.match(unnamed('star*.bin', listing(['star*.bin', 'starx.bin']))!, /also matches starx\.bin/);
    // Whiteout names (an image built before the builder refused them): no line, whatever the level.
    for (const name of ['.wh.ghost', 'sub/.wh..wh..opq', '.wh.dir/a.txt']) assert.match(unnamed(name, listing([name]))!, /whiteout/, name);
    for (const name of ['.wh', 'x.wh.y']) assert.equal(unnamed(name, listing([name])), undefined, name);
    assert.match(unnamed('nl\nx.bin', listing(['nl\nx.bin', 'nlxx.bin']))!, /control character .* also matches nlxx\.bin/);
    // Each other kind of character is named somewhere.
    for (const c of ['*', '?', ']', '$', "'", '"', ' ', 'ü', '字', '\n', '\t', '\u0001']) assert.ok(named.some((n) => n.includes(c)), `a named file holds ${JSON.stringify(c)}`);
    assert.ok(named.some((n) => n.startsWith('-')), 'a named file starts with a dash');
    for (const c of ['?', '*', ' ', '\n', '\t', '\u0001']) assert.ok(namedFolders.some((n) => n.includes(c)), `a named folder holds ${JSON.stringify(c)}`);
  });

  test('a folder line: the source never ends in `/`, the destination is the same folder', () => {
    assert.equal(copyFolder('r', 'q?dir'), 'COPY --link --from=r /q[?]dir ./q?dir/');
    assert.equal(copyFolder('r', 'a/b/'), 'COPY --link --from=r /a/b ./a/b/');
    for (const folder of namedFolders) assert.doesNotMatch(sources(copyFolder('r', folder))[0], /\/$/);
  });

  // The builders reject --link without a newer frontend (dockerd 20.10, buildah 1.28); the rest of each line is the site's, byte for byte.
  const dockerfile = (ref: string) =>
    ['FROM scratch', ...named.map((name, i) => copyLine(ref, [name], `/d${i}/`)), ...namedFolders.map((folder, i) => copyFolder(ref, folder, `/f${i}/`))].map((l) => l.replace('COPY --link ', 'COPY ')).join('\n') + '\n';
  const assertExact = async (root: string) => {
    for (const [i, name] of named.entries()) {
      assert.deepEqual(await readdir(path.join(root, `d${i}`)), [name], JSON.stringify(name));
      assert.ok((await readFile(path.join(root, `d${i}`, name))).equals(files.get(name)!));
    }
    for (const [i, folder] of namedFolders.entries()) {
      assert.deepEqual((await readdir(path.join(root, `f${i}`))).sort(), ['in.txt', 'sub'], JSON.stringify(folder));
      assert.deepEqual(await readdir(path.join(root, `f${i}`, 'sub')), ['deep.txt'], JSON.stringify(folder));
      for (const [inside, rel] of inFolder(folder).map((p) => [p, p.slice(folder.length + 1)])) assert.ok((await readFile(path.join(root, `f${i}`, rel))).equals(files.get(inside)!), JSON.stringify(inside));
    }
  };

  for (const buildkit of [true, false]) {
    test(`${buildkit ? 'BuildKit' : 'the classic builder'}: one line per named file (or folder) copies that file (or the folder's contents) and no sibling`, { timeout: 300_000 }, async () => {
      await assertExact(await dockerd.buildRoot(dockerfile(`${registry.hostPort}/site/escapes:latest`), buildkit));
    });
  }

  test('buildah: one line per named file (or folder) copies that file (or the folder\'s contents) and no sibling', { timeout: 300_000 }, async () => {
    const root = await buildahRoot(registry.hostPort, dockerfile(`${registry.hostPort}/site/escapes:latest`));
    try {
      await assertExact(root.path);
    } finally {
      await root.close();
    }
  });
});
