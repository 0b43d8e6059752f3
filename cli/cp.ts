// depot-ai cp REGISTRY/IMAGE[:TAG|@DIGEST]:/PATH DEST: one file out of an image without Docker.
// For an eStargz layer whose TOC matches the manifest's toc.digest annotation it fetches only the
// footer, the TOC and that file's chunks, checking every chunk against its chunkDigest and
// inflating no more than the TOC states; any other layer is streamed through gunzip and tar,
// verified against the layer digest before the file is kept.
import { createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { extract } from 'tar-stream';
import type { TocEntry } from '../image/estargz.ts';
import { sha256Digest, type Descriptor } from '../image/oci.ts';
import { parseImageReference, RegistryClient, RemoteError } from '../client/remote.ts';
import { gunzipPrefix } from '../client/verify.ts';
import { parseCommandArgs, UsageError } from './args.ts';
import { formatBytes } from './progress.ts';

export async function cpCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, { insecure: { type: 'boolean', default: false } });
  if (positionals.length !== 2) throw new UsageError('cp takes REGISTRY/IMAGE[:TAG|@DIGEST]:/PATH DEST');
  const [source, dest] = positionals;
  const split = source.indexOf(':/');
  if (split < 0) throw new UsageError(`"${source}" needs the file after ":/", e.g. depot.ai/gpt2:/config.json`);
  const ref = parseImageReference(source.slice(0, split));
  const file = source.slice(split + 2).replace(/^\/+/, '');
  const target = await destination(dest, file);

  const client = new RegistryClient(ref.registry, { insecure: values.insecure });
  const { manifest } = await client.imageManifest(ref.repository, ref.reference);
  const layer = manifest.layers[manifest.layers.length - 1];
  const temp = `${target}.depot-${process.pid}.tmp`;
  try {
    const lazily = await copyLazily(client, ref.repository, layer, file, temp);
    if (!lazily) await copyStreamed(client, ref.repository, manifest.layers, file, temp);
    await rename(temp, target);
    const share = ((100 * client.bytesFetched) / manifest.layers.reduce((sum, l) => sum + l.size, 0)).toFixed(2);
    const how = lazily ? `${lazily} chunk${lazily === 1 ? '' : 's'}, range requests` : 'streamed, not eStargz';
    console.error(`copied /${file} to ${target} (${formatBytes((await stat(target)).size)}); fetched ${formatBytes(client.bytesFetched)}, ${share}% of the image (${how})`);
    return 0;
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

async function destination(dest: string, file: string): Promise<string> {
  const info = await stat(dest).catch(() => undefined);
  return info?.isDirectory() ? path.join(dest, path.basename(file)) : dest;
}

/** Room in a chunk's gzip member for its header and the tar headers of the entries after it. */
const MEMBER_SLACK = 1024 * 1024;

/**
 * The number of chunks copied, or 0 when the layer is not eStargz or its descriptor names no TOC
 * digest (a TOC nothing vouches for cannot vouch for chunks).
 */
async function copyLazily(client: RegistryClient, repository: string, layer: Descriptor, file: string, temp: string): Promise<number> {
  const found = await client.layerToc(repository, layer);
  if (!found) return 0;
  const { entries } = found.toc;
  const first = entries.findIndex((e) => e.type === 'reg' && e.name === file);
  if (first < 0) throw new RemoteError(`/${file} is not in the image`);
  const chunks: Array<{ entry: TocEntry; end: number }> = [];
  for (let i = first; i < entries.length && (i === first || entries[i].type === 'chunk'); i++) {
    // A chunk's gzip member runs up to the next entry that starts one (or the TOC).
    const next = entries.slice(i + 1).find((e) => e.offset !== undefined);
    chunks.push({ entry: entries[i], end: next?.offset ?? found.tocOffset });
  }
  const out = createWriteStream(temp);
  const size = entries[first].size ?? 0;
  let written = 0;
  try {
    for (const { entry, end } of size > 0 ? chunks : []) {
      const length = entry.chunkSize || size - (entry.chunkOffset ?? 0);
      const stored = end - entry.offset!;
      // Deflate never grows data much: a member far larger than its chunk is not a chunk.
      const fits = entry.offset! >= 0 && stored > 0 && end <= found.tocOffset && stored <= 2 * length + MEMBER_SLACK;
      if (!fits || (entry.chunkOffset ?? 0) !== written || length <= 0 || written + length > size) {
        throw new RemoteError(`/${file}: the TOC places a chunk of ${length} bytes at ${entry.chunkOffset ?? 0} in ${entry.offset}-${end} of the layer, which does not fit a file of ${size} bytes`);
      }
      const compressed = await client.readRange(repository, layer, entry.offset!, stored);
      const data = await gunzipPrefix(compressed, length, `/${file}: the chunk at ${entry.chunkOffset ?? 0}`);
      const digest = sha256Digest(data);
      if (digest !== entry.chunkDigest) throw new RemoteError(`/${file}: the chunk at ${entry.chunkOffset ?? 0} has digest ${digest}, the TOC says ${entry.chunkDigest}`);
      written += length;
      if (!out.write(data)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    }
    if (written !== size) throw new RemoteError(`/${file}: its chunks in the TOC hold ${written} bytes, the file has ${size}`);
  } finally {
    await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  }
  return Math.max(1, chunks.length);
}

/**
 * Stream the layers, topmost first, through the digest verifier, gunzip and tar; the first one
 * holding the file wins, once the whole layer has verified (its stream errors otherwise).
 */
async function copyStreamed(client: RegistryClient, repository: string, layers: Descriptor[], file: string, temp: string): Promise<void> {
  for (const layer of [...layers].reverse()) {
    const tar = extract();
    let found = false;
    tar.on('entry', (header, stream, next) => {
      const name = header.name.replace(/^\.?\/+/, '');
      if (found || name !== file || header.type !== 'file') {
        stream.on('end', next).resume();
        return;
      }
      found = true;
      pipeline(stream, createWriteStream(temp)).then(() => next(), next);
    });
    const body = Readable.fromWeb((await client.openBlob(repository, layer)) as import('node:stream/web').ReadableStream<Uint8Array>);
    await pipeline(body, createGunzip(), tar);
    if (found) return;
  }
  throw new RemoteError(`/${file} is not in the image`);
}
