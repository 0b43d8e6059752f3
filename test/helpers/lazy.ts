// A large model image for lazy-pull tests and the benchmark: fp16-like weights (≥ 300 MB), a
// 40 MiB file and small JSON files, built once by the real builder; plus what a lazy puller may
// fetch of it (footer + TOC, each file's compressed extent) and the layer bytes a registry sent.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileReadAt } from '../../image/read-at.ts';
import { readToc } from '../../image/toc.ts';
import type { RecordingProxy } from './proxy.ts';
import { buildImage, imageDigests, tempDir, type TestRegistry } from './registry.ts';

export const WEIGHTS = 'model.safetensors';
export const MEDIUM = 'medium.bin';
export const SMALL = ['config.json', 'tokenizer.json', 'generation_config.json'];

/**
 * Deterministic fp16-like bytes: small-magnitude half floats (random sign and mantissa, exponent
 * in a narrow band) as trained weights look, so the layer compresses like a real one (~0.9).
 */
export function fp16Like(seed: number, size: number): Buffer {
  const out = Buffer.from(new ArrayBuffer(size));
  const halves = new Uint16Array(out.buffer, 0, size >>> 1);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < halves.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    halves[i] = (x & 0x83ff) | ((10 + ((x >>> 10) % 5)) << 10); // sign, exponent 10..14, mantissa
  }
  return out;
}

export interface LazyImage {
  store: string;
  name: string;
  tag: string;
  layer: string;
  layerSize: number;
  /** The layer's diff ID: the chain ID of the image's only snapshot. */
  diffId: string;
  /** Bytes from the TOC's start to the end of the layer (TOC member + footer). */
  tocAndFooter: number;
  /** Each file's compressed extent in the layer (its gzip members), in bytes. */
  compressed: Record<string, number>;
  /** sha256 hex of each file's source bytes. */
  sha256: Record<string, string>;
  sizes: Record<string, number>;
}

/**
 * Builds the image (`weights` bytes of weights) into a fresh store with `depot-ai build ... args`
 * (e.g. `--prefetch small`); the sources are deleted after.
 */
export async function buildLazyImage(weights = 320 * 1024 * 1024, name = 'lazy/big-model', args: string[] = []): Promise<LazyImage> {
  const store = await tempDir('lazy-store');
  const src = await tempDir('lazy-src');
  const files: Record<string, Buffer> = {
    'config.json': Buffer.from(JSON.stringify({ model_type: 'llama', hidden_size: 4096, num_hidden_layers: 32 }, null, 2)),
    'tokenizer.json': Buffer.from(JSON.stringify({ version: '1.0', model: { vocab: Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`tok${i}`, i])) } })),
    'generation_config.json': Buffer.from('{"do_sample": true, "temperature": 0.7}\n'),
    [MEDIUM]: fp16Like(7, 40 * 1024 * 1024),
    [WEIGHTS]: fp16Like(1, weights),
  };
  const sha256: Record<string, string> = {};
  const sizes: Record<string, number> = {};
  for (const [file, bytes] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(src, file)), { recursive: true });
    await writeFile(path.join(src, file), bytes);
    sha256[file] = createHash('sha256').update(bytes).digest('hex');
    sizes[file] = bytes.length;
  }
  await buildImage(name, src, store, 'v1', args);
  await rm(src, { recursive: true, force: true });
  const digests = await imageDigests(store, name, 'v1');
  const blobs = path.join(store, ...name.split('/'), 'blobs/sha256');
  const config = JSON.parse(await readFile(path.join(blobs, digests.config.slice(7)), 'utf8'));
  const reader = await fileReadAt(path.join(blobs, digests.layer.slice(7)));
  const layerToc = await readToc(reader.readAt, reader.size);
  await reader.close();
  if (!layerToc) throw new Error('the built layer has no eStargz TOC');
  const offsets = [...new Set(layerToc.toc.entries.flatMap((e) => (e.offset ? [e.offset] : [])).concat(layerToc.tocOffset))].sort((a, b) => a - b);
  const compressed: Record<string, number> = {};
  for (const file of Object.keys(files)) {
    const own = layerToc.toc.entries.filter((e) => e.name === file && e.offset).map((e) => e.offset!);
    const last = Math.max(...own);
    compressed[file] = offsets.find((o) => o > last)! - Math.min(...own);
  }
  return {
    store,
    name,
    tag: 'v1',
    layer: digests.layer,
    layerSize: digests.layerSize,
    diffId: config.rootfs.diff_ids[0],
    tocAndFooter: digests.layerSize - layerToc.tocOffset,
    compressed,
    sha256,
    sizes,
  };
}

/** sha256 hex of a file, streamed (the weights are not held in memory). */
export async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Bytes of `layer` sent so far (GETs; HEADs send none), once the count has been still for 300 ms:
 * from serve's request log (a line is written when a response ends, a moment after the client has
 * its bytes), or from a recording proxy in front of any registry (e.g. the Worker).
 */
export async function layerBytesSent(from: TestRegistry | RecordingProxy, layer: string): Promise<number> {
  const count = 'lines' in from ? () => loggedBytes(from.lines, layer) : () => from.requests.reduce((n, r) => n + (r.method === 'GET' && r.url.endsWith(`/blobs/${layer}`) ? r.bytes : 0), 0);
  let seen = -1;
  for (let now = count(); now !== seen; now = count()) {
    seen = now;
    await new Promise((r) => setTimeout(r, 300));
  }
  return seen;
}

/** The layer bytes serve's request log lines account for. */
function loggedBytes(lines: string[], layer: string): number {
  let total = 0;
  for (const line of lines) {
    if (!line.includes(` /v2/`) || !line.includes(`/blobs/${layer} `) || line.includes(' HEAD ')) continue;
    const m = / (\d{3}) (\d+|-)B? /.exec(line);
    if (!m || m[2] === '-') throw new Error(`a layer response without a byte count: ${line}`);
    total += Number(m[2]);
  }
  return total;
}
