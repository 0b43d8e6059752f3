// The catalog schema: each rule accepted and rejected, with the line and column reported.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { formatProblem, imageName, loadCatalog, parseCatalog } from '../models/catalog.ts';
import { depotAi } from './helpers/cli.ts';
import { tempDir } from './helpers/models.ts';

const SHA = '1dbc166cf8765166998eff31ade2eb64c8a40076';

function problems(yaml: string): string[] {
  return parseCatalog(yaml, 'm.yaml').problems.map(formatProblem);
}

function entry(fields: string): string {
  return `models:\n  - ${fields.trim().split('\n').join('\n    ')}\n`;
}

describe('catalog schema', () => {
  test('the real catalog is valid: 109 models, image names lower-cased', async () => {
    const models = await loadCatalog('models/models.yaml');
    assert.equal(models.length, 109);
    const flux = models.find((m) => m.name === 'black-forest-labs/FLUX.1-schnell');
    assert.equal(flux?.image, 'black-forest-labs/flux.1-schnell');
  });

  test('tag defaults to latest; positions are those of the entry', () => {
    const { models, problems: found } = parseCatalog(`models:\n  - name: gpt2\n    sha: ${SHA}\n`, 'm.yaml');
    assert.deepEqual(found, []);
    assert.deepEqual(models, [{ name: 'gpt2', sha: SHA, tag: 'latest', image: 'gpt2', line: 2, column: 5 }]);
  });

  const accepted = ['gpt2', 'openai/clip-vit-large-patch14', 'black-forest-labs/FLUX.1-schnell', 'a_b/c.d-e', `o/${'x'.repeat(94)}`];
  for (const name of accepted) {
    test(`accepts the name ${name.slice(0, 40)}`, () => {
      assert.deepEqual(problems(entry(`name: ${name}\nsha: ${SHA}`)), []);
    });
  }

  const rejectedNames: Array<[string, RegExp]> = [
    ['a/b/c', /more than one "\/"/],
    ['foo--bar', /must not contain "--" or "\.\."/],
    ['foo..bar', /must not contain "--" or "\.\."/],
    ['-foo', /must not start or end a part with "-" or "\."/],
    ['owner/foo.', /must not start or end a part with "-" or "\."/],
    ['owner/sp ace', /may only contain letters, digits/],
    ['owner/_x', /does not make a valid image name/],
    [`o/${'x'.repeat(95)}`, /at most 96/],
  ];
  for (const [name, message] of rejectedNames) {
    test(`rejects the name "${name.slice(0, 30)}" at its line and column`, () => {
      const found = problems(entry(`name: "${name}"\nsha: ${SHA}`));
      assert.equal(found.length, 1, found.join('\n'));
      assert.match(found[0], /^m\.yaml:2:11: /);
      assert.match(found[0], message);
    });
  }

  test('sha must be 40 lower-case hex digits', () => {
    assert.match(problems(entry(`name: gpt2\nsha: ${SHA.toUpperCase()}`))[0], /^m\.yaml:3:10: sha .* 40 lower-case hex/);
    assert.match(problems(entry(`name: gpt2\nsha: main`))[0], /^m\.yaml:3:10: /);
    assert.match(problems(entry(`name: gpt2\nsha: ${SHA}0`))[0], /40 lower-case hex/);
  });

  test('tag follows the OCI tag grammar', () => {
    assert.deepEqual(problems(entry(`name: gpt2\nsha: ${SHA}\ntag: v1.0_rc-2`)), []);
    assert.deepEqual(problems(entry(`name: gpt2\nsha: ${SHA}\ntag: "${'t'.repeat(128)}"`)), []);
    for (const tag of ['.hidden', '-dash', 'has:colon', 't'.repeat(129)]) {
      const found = problems(entry(`name: gpt2\nsha: ${SHA}\ntag: "${tag}"`));
      assert.match(found[0] ?? '', /^m\.yaml:4:10: tag .* is not a valid tag/, tag);
    }
  });

  // YAML 1.2 reads these plain scalars as numbers; each must come out exactly as written or be
  // reported where it stands with the quoted form to write instead.
  const numberLike = [
    '1.10', '2.0', '010', '1e3', '1E3', '0x1F', '0o17', '.5', '1.', '+1', '-0', '00', '1.0e+10', '.inf', '-.Inf', '.NaN',
    '2', '10', '123', ...Array.from({ length: 20 }, (_, i) => `${(i * 7919) % 97}.${String(i * 13).padEnd(1 + (i % 3), '0')}`),
  ];
  for (const written of numberLike) {
    test(`tag: ${written} is kept as written or reported with "quote it"`, () => {
      const { models, problems: found } = parseCatalog(entry(`name: gpt2\nsha: ${SHA}\ntag: ${written}`), 'm.yaml');
      if (found.length === 0) assert.equal(models[0].tag, written);
      else {
        assert.equal(found.length, 1);
        assert.equal(formatProblem(found[0]).startsWith('m.yaml:4:10: '), true, formatProblem(found[0]));
        assert.match(found[0].message, new RegExp(`quote it: tag: "${written.replace(/[.+]/g, '\\$&')}"`));
      }
      const quoted = parseCatalog(entry(`name: gpt2\nsha: ${SHA}\ntag: "${written}"`), 'm.yaml');
      if (quoted.problems.length === 0) assert.equal(quoted.models[0].tag, written);
    });
  }

  test('an unquoted all-digit sha is reported as written, with "quote it"', () => {
    for (const sha of ['1234567890123456789012345678901234567890', '0000000000000000000000000000000000000001']) {
      const found = problems(entry(`name: gpt2\nsha: ${sha}`));
      assert.deepEqual(found, [`m.yaml:3:10: sha ${sha} is read by YAML as the number ${Number(sha)}; quote it: sha: "${sha}"`]);
      assert.deepEqual(parseCatalog(entry(`name: gpt2\nsha: "${sha}"`), 'm.yaml').models[0].sha, sha);
    }
  });

  test("a bare name that is one of the site's own paths is refused, in any case; with an owner it is fine", () => {
    for (const name of ['index', 'INDEX', '404', 'robots.txt', 'Favicon.svg', 'sitemap-index.xml', 'sitemap-0.xml', 'sitemap', 'index.html', '404.HTML', 'gpt2.html', 'content-modules.mjs']) {
      assert.match(problems(entry(`name: ${name}\nsha: ${SHA}`))[0] ?? '', new RegExp(`name "${name.replace(/\./g, '\\.')}" is a path the site serves itself`), name);
      assert.deepEqual(problems(entry(`name: someone/${name}\nsha: ${SHA}`)), [], `someone/${name}`);
    }
    for (const name of ['gpt2', 'index2', 'robots', 'my-404']) assert.deepEqual(problems(entry(`name: ${name}\nsha: ${SHA}`)), [], name);
  });

  test('name and sha are required', () => {
    assert.deepEqual(problems(entry('name: gpt2')), ['m.yaml:2:5: model is missing "sha"']);
    assert.deepEqual(problems(entry(`sha: ${SHA}`)), ['m.yaml:2:5: model is missing "name"']);
  });

  test('unknown keys are errors with a hint', () => {
    assert.deepEqual(problems(entry(`name: gpt2\nsha: ${SHA}\ntagAs: latest`)), ['m.yaml:4:5: unknown key "tagAs": did you mean "tag"?']);
    assert.match(problems(entry(`name: gpt2\nsha: ${SHA}\nlicense: mit`))[0], /unknown key "license": allowed keys: "name", "sha", "tag"/);
    assert.match(problems(`models: []\nextra: 1\n`)[0], /^m\.yaml:2:1: unknown key "extra"/);
  });

  test('two entries with the same name and tag are rejected; one repository spelled in two cases is rejected whatever the tags', () => {
    const same = `models:\n  - name: GPT2\n    sha: ${SHA}\n  - name: GPT2\n    sha: ${SHA}\n    tag: latest\n  - name: GPT2\n    sha: ${SHA}\n    tag: v2\n`;
    assert.deepEqual(problems(same), ['m.yaml:4:5: "GPT2" with tag "latest" is already listed at line 2']);
    assert.equal(imageName('GPT2'), 'gpt2');
    // Generated respellings of one name (each letter's case flipped by the bits of i), with and without another tag.
    const name = 'CompVis/stable-diffusion-v1-4';
    const letters = [...name].flatMap((c, at) => (/[a-z]/i.test(c) ? [at] : []));
    for (let i = 1; i < 40; i++) {
      const other = [...name].map((c, at) => (letters.indexOf(at) >= 0 && (i * 2654435761) % 97 % (letters.indexOf(at) + 2) === 0 ? (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase()) : c)).join('');
      if (other === name) continue;
      for (const tag of ['latest', 'v2']) {
        const yaml = `models:\n  - name: ${name}\n    sha: ${SHA}\n  - name: ${other}\n    sha: ${SHA}\n    tag: ${tag}\n`;
        assert.deepEqual(problems(yaml), [`m.yaml:4:5: "${other}" is "${name}" (line 2) spelled differently: the Hub and the image name ignore case; spell it "${name}"`], yaml);
      }
    }
  });

  test('a top-level models list is required', () => {
    assert.match(problems('- name: gpt2\n')[0], /^m\.yaml:1:1: the catalog must be a mapping/);
    assert.match(problems('models: {}\n')[0], /needs a top-level "models" list/);
    assert.match(problems(`models:\n  - just a string\n`)[0], /^m\.yaml:2:5: each model must be a mapping/);
    assert.match(problems(entry('name: [a]\nsha: x'))[0], /^m\.yaml:2:11: "name" must be a string/);
  });

  test('YAML syntax errors carry their position; every problem is reported at once', () => {
    assert.match(problems('models:\n  - name: gpt2\n   sha: x\n')[0], /^m\.yaml:\d+:\d+: /);
    assert.match(problems('models:\n  - name: a\n    name: b\n')[0], /^m\.yaml:3:5: Map keys must be unique/);
    const many = problems(`models:\n  - name: a--b\n    sha: nope\n  - name: gpt2\n    sha: ${SHA}\n    tagg: x\n`);
    assert.equal(many.length, 3, many.join('\n'));
  });
});

describe('depot-ai models check', () => {
  test('prints a one-line OK summary for the real catalog', async () => {
    const run = await depotAi(['models', 'check']);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /^models\/models\.yaml: OK, 109 models from \d+ owners\n$/);
  });

  test('prints every problem as FILE:LINE:COL and exits non-zero', async () => {
    const file = path.join(tempDir(), 'broken.yaml');
    writeFileSync(file, `models:\n  - name: ok/model\n    sha: ${SHA}\n  - name: bad--name\n    sha: ${SHA}\n    tagAs: v1\n`);
    const run = await depotAi(['models', 'check', file]);
    assert.equal(run.status, 1);
    assert.equal(
      run.stderr,
      `${file}:4:11: name "bad--name" must not contain "--" or ".."\n${file}:6:5: unknown key "tagAs": did you mean "tag"?\n`,
    );
  });

  test('a missing file is one clear line', async () => {
    const run = await depotAi(['models', 'check', '/nonexistent.yaml']);
    assert.equal(run.status, 1);
    assert.equal(run.stderr, '/nonexistent.yaml:1:1: cannot read the catalog: ENOENT\n');
  });
});
