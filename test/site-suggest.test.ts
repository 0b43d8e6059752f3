// The 404 page's suggestions compare a bounded part of the path (issue 14, F10): the first two
// segments, at most MAX_COMPARED characters, so a very long path costs what a short one does.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { comparedPart, MAX_COMPARED, nearestNames } from '../site/scripts/suggest.ts';
import { pseudoRandom } from './helpers/registry.ts';

const NAMES = ['runwayml/stable-diffusion-v1-5', 'gpt2', 'openai/whisper-large-v3', 'meta-llama/Llama-2-7b-hf', 'stabilityai/stable-diffusion-xl-base-1.0'];

test('a copied Hub URL or a typo still finds the model', () => {
  assert.equal(nearestNames('/runwayml/stable-diffusion-v1.5/blob/main/v1-5-pruned.ckpt', NAMES)[0], 'runwayml/stable-diffusion-v1-5');
  assert.equal(nearestNames('/no-such/gpt-2', NAMES)[0], 'gpt2');
  assert.equal(nearestNames('/openai/whisper-large-v3/', NAMES)[0], 'openai/whisper-large-v3');
  assert.deepEqual(nearestNames('///', NAMES), []);
});

test('generated long paths: what is compared is the first two segments, at most MAX_COMPARED characters, and the suggestions are those of that part', () => {
  const bytes = pseudoRandom('suggest', 64);
  for (let i = 0; i < 16; i++) {
    const segment = (n: number) => 'ab-/.'.repeat(1 + (bytes[i] % 7)).slice(0, 5) + 'x'.repeat(n);
    const wanted = `/${segment(bytes[i] * 40)}/${segment(bytes[63 - i] * 4000)}/${'rest/'.repeat(bytes[i + 16] * 100)}`;
    const part = comparedPart(wanted);
    assert.ok(part.length <= MAX_COMPARED, `${part.length} characters compared`);
    assert.ok(wanted.toLowerCase().replace(/\/+/g, '/').slice(1).startsWith(part), 'a prefix of the path');
    assert.ok(part.split('/').length <= 2);
    assert.deepEqual(nearestNames(wanted, NAMES), nearestNames('/' + part, NAMES));
  }
  // A path of megabytes: the same bounded work (the test would take minutes otherwise).
  const huge = '/' + 'runwayml'.repeat(250_000) + '/' + 'x'.repeat(2_000_000);
  assert.equal(comparedPart(huge).length, MAX_COMPARED);
  assert.equal(nearestNames(huge, NAMES).length, NAMES.length);
});
