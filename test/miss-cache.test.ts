// registry/miss-cache.ts: the Worker's memory of upstream 404s is short and bounded.
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { test } from 'node:test';
import { MissCache } from '../registry/miss-cache.ts';

test('a miss is remembered for exactly the TTL, and only the newest `max` misses are kept', () => {
  let now = 1_000_000;
  const ttl = randomInt(1, 120_000);
  const max = randomInt(2, 50);
  const cache = new MissCache(ttl, max, () => now);
  const keys = Array.from({ length: max * 3 }, (_, i) => `repo/m@sha256:${i}`);
  for (const key of keys) cache.add(key);
  assert.equal(keys.filter((k) => cache.has(k)).length, max);
  assert.ok(keys.slice(-max).every((k) => cache.has(k)), 'the newest are kept');
  now += ttl - 1;
  assert.ok(cache.has(keys.at(-1)!));
  now += 1;
  assert.equal(keys.filter((k) => cache.has(k)).length, 0, 'forgotten at the TTL');
  cache.add(keys[0]);
  assert.ok(cache.has(keys[0]), 'remembered again after a new miss');
});
