// R2Store's writer against R2's multipart limits: a bucket that applies them (Miniflare's simulated
// R2 does not count parts) and holds what it is given, so every test reads back the stored bytes.
// Blobs of hundreds of GB cannot be hashed in a test: the part sizing is checked at R2's real
// limits on generated sizes, and the writer itself at limits scaled down by the same rules.
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { describe, test } from 'node:test';
import { RegistryError } from '../registry/errors.ts';
import { blobKey, partSize, R2_PART_LIMITS, R2Store, type PartLimits, type R2Bucket, type R2Object } from '../registry/r2-store.ts';

const MiB = 1024 * 1024;
const GB = 1e9;

/** An R2 bucket (blob writes only) enforcing `limits` the way R2 documents them for multipart uploads. */
function limitedBucket(limits: PartLimits) {
  const objects = new Map<string, Buffer>();
  const open = new Set<string>();
  let aborted = 0;
  const object = (key: string, size: number): R2Object => ({ key, size, uploaded: new Date() });
  const bucket = {
    async head(key: string) {
      const bytes = objects.get(key);
      return bytes ? object(key, bytes.length) : null;
    },
    async put(key: string, value: Uint8Array, options?: { sha256?: string }) {
      if (options?.sha256 && createHash('sha256').update(value).digest('hex') !== options.sha256) throw new Error('put: sha256 mismatch');
      objects.set(key, Buffer.from(value));
      return object(key, value.length);
    },
    async createMultipartUpload(key: string) {
      const id = `${key}#${open.size}`;
      open.add(id);
      const parts = new Map<number, Uint8Array>();
      return {
        async uploadPart(n: number, value: Uint8Array) {
          assert.ok(open.has(id), 'uploadPart after complete/abort');
          assert.ok(Number.isInteger(n) && n >= 1 && n <= limits.maxParts, `part number ${n} outside 1..${limits.maxParts}`);
          parts.set(n, new Uint8Array(value));
          return { partNumber: n, etag: String(n) };
        },
        async complete(list: { partNumber: number }[]) {
          const sizes = list.map((p) => parts.get(p.partNumber)!.length);
          assert.ok(list.every((p, i) => p.partNumber === i + 1), 'parts in order');
          assert.ok(sizes.slice(0, -1).every((s) => s === sizes[0]), `parts of one size but the last: ${sizes}`);
          assert.ok(sizes.at(-1)! <= sizes[0], 'last part no larger than the others');
          assert.ok(list.length === 1 || (sizes[0] >= limits.minPartSize && sizes[0] <= limits.maxPartSize), `part size ${sizes[0]} within limits`);
          open.delete(id);
          const bytes = Buffer.concat(list.map((p) => parts.get(p.partNumber)!));
          objects.set(key, bytes);
          return object(key, bytes.length);
        },
        async abort() {
          open.delete(id);
          aborted++;
        },
      };
    },
  };
  return { bucket: bucket as unknown as R2Bucket, objects, open, aborted: () => aborted };
}

/** Write `bytes` in random chunk sizes (below `chunk`); resolves with the sink's error, if any. */
async function writeBlob(store: R2Store, digest: string, bytes: Uint8Array, size?: number, chunk = 3000): Promise<Error | undefined> {
  const sink = await store.writer.createBlob('big/model', digest, size);
  try {
    for (let at = 0; at < bytes.length; ) {
      const n = Math.min(bytes.length - at, randomInt(1, chunk));
      await sink.write(bytes.subarray(at, at + n));
      at += n;
    }
    await sink.commit();
  } catch (error) {
    await sink.abort();
    return error as Error;
  }
  return undefined;
}

const digestOf = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

describe('R2 multipart parts', () => {
  test('part size at R2 limits: every size up to 640 GiB (the largest catalog layer ~276 GB) fits 10,000 parts of a whole MiB, the least such', () => {
    const { maxParts, minPartSize, maxPartSize } = R2_PART_LIMITS;
    const sizes = [0, 1, 276 * GB, 78.2 * 2 ** 30, maxParts * minPartSize, maxParts * minPartSize + 1, maxParts * maxPartSize];
    for (let i = 0; i < 200; i++) sizes.push(Math.floor(Math.random() * maxParts * maxPartSize));
    for (const size of sizes) {
      const part = partSize(size);
      assert.equal(part % MiB, 0, `${size}: ${part}`);
      assert.ok(part >= minPartSize && part <= maxPartSize && part <= 5 * 2 ** 30, `${size}: ${part}`);
      assert.ok(Math.ceil(size / part) <= maxParts, `${size} bytes in ${Math.ceil(size / part)} parts of ${part}`);
      assert.ok(part === minPartSize || Math.ceil(size / (part - MiB)) > maxParts, `${size}: ${part} is not the least`);
    }
    assert.equal(partSize(undefined), minPartSize);
    assert.throws(() => partSize(maxParts * maxPartSize + 1), /needs 10000 parts of \d+ bytes; R2Writer holds at most/);
  });

  // R2's rules scaled down 1024 times (10 parts, 8 KiB to 64 KiB, whole KiB): the same code paths.
  const limits: PartLimits = { maxParts: 10, minPartSize: 8 * 1024, maxPartSize: 64 * 1024, unit: 1024 };
  const capacity = limits.maxParts * limits.maxPartSize;

  test('a blob of announced size up to the capacity: parts sized by it, stored byte for byte', async () => {
    const sizes = [0, 1, limits.minPartSize, limits.maxParts * limits.minPartSize + 1, capacity];
    for (let i = 0; i < 20; i++) sizes.push(randomInt(0, capacity + 1));
    for (const size of sizes) {
      const { bucket, objects, open } = limitedBucket(limits);
      const bytes = randomBytes(size);
      const error = await writeBlob(new R2Store(bucket, limits), digestOf(bytes), bytes, size);
      assert.equal(error, undefined, `${size} bytes: ${error?.message}`);
      assert.ok(bytes.equals(objects.get(blobKey('big/model', digestOf(bytes)))!), `${size} bytes stored as written`);
      assert.equal(open.size, 0);
    }
  });

  test('a blob of unknown size past the parts: one clear error, nothing stored, the upload aborted, and the next fill refused before a byte', async () => {
    const { bucket, objects, open, aborted } = limitedBucket(limits);
    const store = new R2Store(bucket, limits);
    const fits = randomBytes(limits.maxParts * limits.minPartSize);
    assert.equal(await writeBlob(store, digestOf(fits), fits), undefined);
    const bytes = randomBytes(limits.maxParts * limits.minPartSize + randomInt(1, limits.minPartSize * 3));
    const error = await writeBlob(store, digestOf(bytes), bytes);
    assert.match(error?.message ?? '', /is over 81920 bytes: more than R2's 10 parts of 8192 bytes, and its size was not known in advance \(no Content-Length/);
    assert.equal(objects.has(blobKey('big/model', digestOf(bytes))), false);
    assert.equal(open.size, 0);
    assert.equal(aborted(), 1);
    await assert.rejects(store.writer.createBlob('big/model', digestOf(bytes)), (e) => e instanceof RegistryError && e.status === 502 && /is over 81920 bytes/.test(e.message));
    assert.equal(await writeBlob(store, digestOf(bytes), bytes, bytes.length), undefined, 'with its size known it fits');
  });

  test('a blob longer or shorter than announced, or over the capacity: refused, nothing stored', async () => {
    const { bucket, objects, open } = limitedBucket(limits);
    const store = new R2Store(bucket, limits);
    const bytes = randomBytes(randomInt(limits.maxPartSize, capacity));
    for (const announced of [bytes.length - 1, bytes.length + 1]) {
      const error = await writeBlob(store, digestOf(bytes), bytes, announced);
      assert.match(error?.message ?? '', announced < bytes.length ? /more than the \d+ bytes announced/ : /announced: \d+/);
    }
    // A 502 (the spec's answer for an upstream blob the registry cannot hold), not an internal error.
    await assert.rejects(store.writer.createBlob('big/model', digestOf(bytes), capacity + randomInt(1, capacity)), (e) => e instanceof RegistryError && e.status === 502 && /too large for this registry to hold: a blob of \d+ bytes needs 10 parts of \d+ bytes/.test(e.message));
    assert.equal(objects.size, 0);
    assert.equal(open.size, 0);
  });

  test('at R2 limits, parts held as growing blocks: blobs of several parts, known size or not, stored byte for byte', async () => {
    for (const size of [R2_PART_LIMITS.minPartSize + randomInt(1, 4 * MiB), 2 * R2_PART_LIMITS.minPartSize + randomInt(0, MiB)]) {
      const bytes = randomBytes(size);
      for (const announced of [size, undefined]) {
        const { bucket, objects, open } = limitedBucket(R2_PART_LIMITS);
        const error = await writeBlob(new R2Store(bucket), digestOf(bytes), bytes, announced, 200_000);
        assert.equal(error, undefined, `${size} bytes: ${error?.message}`);
        assert.ok(bytes.equals(objects.get(blobKey('big/model', digestOf(bytes)))!), `${size} bytes (announced: ${announced}) stored as written`);
        assert.equal(open.size, 0);
      }
    }
  });

  test('fills claiming hundreds of GiB hold about what they received, not a part of the claimed size', async () => {
    const claims = Array.from({ length: 6 }, () => randomInt(500 * 2 ** 30, R2_PART_LIMITS.maxParts * R2_PART_LIMITS.maxPartSize));
    const received = claims.map(() => randomBytes(randomInt(1, 2 * MiB)));
    const { bucket, objects } = limitedBucket(R2_PART_LIMITS);
    const store = new R2Store(bucket);
    const before = process.memoryUsage().arrayBuffers;
    const sinks = await Promise.all(claims.map((claim, i) => store.writer.createBlob('big/model', digestOf(received[i]), claim)));
    for (const [i, sink] of sinks.entries()) await sink.write(received[i]);
    const held = process.memoryUsage().arrayBuffers - before;
    const got = received.reduce((sum, b) => sum + b.length, 0);
    // Each part would be over 50 MiB: 6 of them are 300 MiB. Blocks double, so at most twice what came, plus one 64 KiB block each.
    assert.ok(held <= 2 * got + claims.length * 64 * 1024 + MiB, `${held} bytes held for ${got} received (parts of ${partSize(claims[0])} bytes claimed)`);
    for (const sink of sinks) await sink.abort();
    assert.equal(objects.size, 0);
  });
});
