// Changed-model detection: a pure function of two models.yaml texts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CatalogError } from '../models/catalog.ts';
import { changedModels, toBuild } from '../models/changes.ts';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const C = 'c'.repeat(40);

function catalog(...entries: Array<[string, string, string?]>): string {
  return `# the catalog\nmodels:\n${entries.map(([name, sha, tag]) => `  - name: ${name}\n    sha: ${sha}\n${tag ? `    tag: ${tag}\n` : ''}`).join('')}`;
}

function summary(before: string | undefined, after: string): string[] {
  return changedModels(before, after).map((c) => `${c.kind} ${c.model.image}:${c.model.tag}@${c.model.sha[0]}${c.previous ? ` was ${c.previous.tag}@${c.previous.sha[0]}` : ''}`);
}

describe('changedModels', () => {
  const base = catalog(['gpt2', A], ['openai/Whisper-Tiny', B, 'v1'], ['bert-base-uncased', C]);

  test('identical catalogs: no change', () => {
    assert.deepEqual(summary(base, base), []);
  });

  test('reordered, reformatted and commented only: no change', () => {
    const after = `models:\n  # moved to the top\n  - { name: bert-base-uncased, sha: ${C}, tag: latest }\n  - tag: v1\n    sha: "${B}"\n    name: openai/Whisper-Tiny\n  - name: gpt2\n    sha: ${A}\n`;
    assert.deepEqual(summary(base, after), []);
  });

  test('an added entry', () => {
    const after = catalog(['gpt2', A], ['openai/Whisper-Tiny', B, 'v1'], ['Org/New-Model', C], ['bert-base-uncased', C]);
    assert.deepEqual(summary(base, after), ['added org/new-model:latest@c']);
    assert.deepEqual(toBuild(changedModels(base, after)).map((m) => m.name), ['Org/New-Model']);
  });

  test('a changed sha', () => {
    const after = catalog(['gpt2', C], ['openai/Whisper-Tiny', B, 'v1'], ['bert-base-uncased', C]);
    assert.deepEqual(summary(base, after), ['sha gpt2:latest@c was latest@a']);
  });

  test('a changed tag (with or without a new sha)', () => {
    const after = catalog(['gpt2', A, 'v2'], ['openai/Whisper-Tiny', A, 'v2'], ['bert-base-uncased', C]);
    assert.deepEqual(summary(base, after), ['tag gpt2:v2@a was latest@a', 'tag openai/whisper-tiny:v2@a was v1@b']);
  });

  test('a second tag of a listed image is an addition, not a tag change', () => {
    const after = catalog(['gpt2', A], ['gpt2', B, 'old'], ['openai/Whisper-Tiny', B, 'v1'], ['bert-base-uncased', C]);
    assert.deepEqual(summary(base, after), ['added gpt2:old@b']);
  });

  test('a removed entry is reported and not built', () => {
    const after = catalog(['gpt2', A], ['bert-base-uncased', C]);
    const changes = changedModels(base, after);
    assert.deepEqual(summary(base, after), ['removed openai/whisper-tiny:v1@b']);
    assert.deepEqual(toBuild(changes), []);
  });

  test('a name whose case changes keeps its image: no change', () => {
    const after = catalog(['GPT2', A], ['openai/Whisper-Tiny', B, 'v1'], ['bert-base-uncased', C]);
    assert.deepEqual(summary(base, after), []);
  });

  test('no previous catalog: everything is added', () => {
    assert.deepEqual(summary(undefined, base), ['added gpt2:latest@a', 'added openai/whisper-tiny:v1@b', 'added bert-base-uncased:latest@c']);
  });

  test('an invalid catalog is an error with its position', () => {
    assert.throws(() => changedModels(base, 'models:\n  - name: gpt2\n    sha: nope\n'), (error: unknown) => {
      assert.ok(error instanceof CatalogError);
      assert.match(error.message, /^models\/models\.yaml:3:10: sha "nope" must be a full commit hash/);
      return true;
    });
  });
});
