// The one-segment pages that work without JavaScript: sort pages no catalog name can collide with,
// and owner-less name pages that never take the path of another page.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { imageName, nameProblem, type ModelEntry } from '../models/catalog.ts';
import { ownerlessPages, SORT_KEYS, sortPath } from '../site/lib/list-pages.ts';

const entry = (name: string, tag = 'latest'): ModelEntry => ({ name, sha: 'a'.repeat(40), tag, image: imageName(name), line: 1, column: 1 });

test('no catalog name can be a sort page: the catalog refuses "--", in a bare name or after an owner', () => {
  for (const key of SORT_KEYS) {
    const segment = sortPath(key).slice(1);
    assert.ok(nameProblem(segment), segment);
    assert.ok(nameProblem(`owner/${segment}`), `owner/${segment}`);
  }
});

test('owner-less pages: one per name compared lower-cased (at its first spelling), listing every owner of the name; never a bare catalog name or a reserved path', () => {
  const entries = [
    entry('gpt2'),
    entry('openai-community/gpt2'),
    entry('Someone/GPT2'),
    entry('runwayml/stable-diffusion-v1-5'),
    entry('runwayml/stable-diffusion-v1-5', 'fp16'),
    entry('Other/Stable-Diffusion-v1-5'),
    ...['index', '404', 'robots.txt', 'favicon.svg', 'sitemap-index.xml', 'sitemap-0.xml', 'Index', 'index.html', 'gpt2.html', 'content-modules.mjs', 'Page.HTML'].map((repo) => entry(`org/${repo}`)),
    entry('org/index-models'),
  ];
  for (const e of entries) assert.equal(nameProblem(e.name), undefined, e.name);
  const pages = ownerlessPages(entries);
  assert.deepEqual(pages, [
    { repo: 'stable-diffusion-v1-5', names: ['runwayml/stable-diffusion-v1-5', 'Other/Stable-Diffusion-v1-5'] },
    { repo: 'index-models', names: ['org/index-models'] },
  ]);
});

test('owner-less pages never differ only in case (they would be one file on a case-insensitive host): generated spellings', () => {
  const repos = ['Bar', 'bar', 'BAR', 'Model-X', 'model-x', 'mODEL-x', 'ünï', 'ÜNÏ', 'Solo'];
  const owners = ['Foo', 'x', 'acme', 'Org-9'];
  const entries = repos.map((repo, i) => entry(`${owners[i % owners.length]}/${repo}`));
  const pages = ownerlessPages(entries);
  const paths = pages.map((p) => p.repo.toLowerCase());
  assert.equal(new Set(paths).size, paths.length, `distinct lower-cased: ${pages.map((p) => p.repo)}`);
  assert.deepEqual(pages.map((p) => p.repo), ['Bar', 'Model-X', 'ünï', 'Solo']);
  // Every owner/repo entry is listed on the page of its name.
  for (const e of entries) assert.ok(pages.find((p) => p.repo.toLowerCase() === e.name.split('/')[1].toLowerCase())!.names.includes(e.name), e.name);
  assert.deepEqual(ownerlessPages([entry('Foo/Bar'), entry('x/bar')]), [{ repo: 'Bar', names: ['Foo/Bar', 'x/bar'] }]);
});
