// depot-ai cp REGISTRY/IMAGE[:TAG|@DIGEST]:/PATH DEST: one file out of an image without Docker.
// For an eStargz layer whose TOC matches the manifest's toc.digest annotation it fetches only the
// footer, the TOC and that file's chunks, checking every chunk against its chunkDigest and
// inflating no more than the TOC states, as it streams; any other layer (or any layer of a
// registry that ignores Range) is streamed through gunzip and tar, verified against the layer
// digest before the file is kept. Credentials as `build --push` finds them; the temp file is
// created exclusively in a private folder beside the destination.
import { createWriteStream } from 'node:fs';
import { mkdtemp, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { extract } from 'tar-stream';
import type { TocEntry } from '../image/estargz.ts';
import type { Descriptor } from '../image/oci.ts';
import { registryCredentials } from '../client/credentials.ts';
import { parseImageReference, RangeIgnored, RegistryClient, RemoteError } from '../client/remote.ts';
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

  const client = new RegistryClient(ref.registry, { insecure: values.insecure, credentials: await registryCredentials(ref.registry) });
  const { manifest } = await client.imageManifest(ref.repository, ref.reference);
  const layer = manifest.layers[manifest.layers.length - 1];
  // A private folder beside the destination (mode 0700, a name no one can guess or plant a link
  // at), so the rename into place stays on one file system.
  const folder = await mkdtemp(path.join(path.dirname(target), '.depot-cp-'));
  const temp = path.join(folder, 'file');
  try {
    let rangeIgnored = false;
    const lazily = await copyLazily(client, ref.repository, layer, file, temp, manifest.layers.length > 1).catch(async (error) => {
      if (!(error instanceof RangeIgnored)) throw error;
      await rm(temp, { force: true }); // the registry ignores Range: the verified whole-layer read instead
      rangeIgnored = true;
      return 0;
    });
    if (!lazily) await copyStreamed(client, ref.repository, manifest.layers, file, temp);
    await rename(temp, target);
    const share = ((100 * client.bytesFetched) / manifest.layers.reduce((sum, l) => sum + l.size, 0)).toFixed(2);
    const how = lazily ? `${lazily} chunk${lazily === 1 ? '' : 's'}, range requests` : rangeIgnored ? 'streamed, the registry ignores Range' : 'streamed, not eStargz';
    console.error(`copied /${file} to ${target} (${formatBytes((await stat(target)).size)}); fetched ${formatBytes(client.bytesFetched)}, ${share}% of the image (${how})`);
    return 0;
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

async function destination(dest: string, file: string): Promise<string> {
  const info = await stat(dest).catch(() => undefined);
  return info?.isDirectory() ? path.join(dest, path.basename(file)) : dest;
}

/** Room in a chunk's gzip member for its header and the tar headers of the entries after it. */
const MEMBER_SLACK = 1024 * 1024;
/**
 * The largest chunk fetched by range (4 x eStargz's default 4 MiB): its member, at most twice
 * that plus the slack, is the most held in memory. A file in larger chunks is streamed instead.
 */
const MAX_LAZY_CHUNK = 16 * 1024 * 1024;

/**
 * The number of chunks copied from the top layer, or 0 when the layer is not eStargz, its
 * descriptor names no TOC digest (a TOC nothing vouches for cannot vouch for chunks), the file's
 * chunks are larger than MAX_LAZY_CHUNK, or the file is not in it but `lowerLayers` may hold it.
 */
async function copyLazily(client: RegistryClient, repository: string, layer: Descriptor, file: string, temp: string, lowerLayers: boolean): Promise<number> {
  const found = await client.layerToc(repository, layer);
  if (!found) return 0;
  const { entries } = found.toc;
  const first = entries.findIndex((e) => e.type === 'reg' && e.name === file);
  const other = entries.find((e) => e.type !== 'reg' && e.type !== 'chunk' && layerPath(e.name) === file);
  if (other) throw new RemoteError(`/${file} is a ${other.type === 'dir' ? 'folder' : other.type} in the image, not a file (cp copies regular files)`);
  if (first < 0 && lowerLayers) return 0;
  if (first < 0) throw new RemoteError(`/${file} is not in the image`);
  const chunks: Array<{ entry: TocEntry; end: number }> = [];
  for (let i = first; i < entries.length && (i === first || entries[i].type === 'chunk'); i++) {
    // A chunk's gzip member runs up to the next entry that starts one (or the TOC).
    const next = entries.slice(i + 1).find((e) => e.offset !== undefined);
    chunks.push({ entry: entries[i], end: next?.offset ?? found.tocOffset });
  }
  const size = entries[first].size ?? 0;
  const chunkLength = (entry: TocEntry) => entry.chunkSize || size - (entry.chunkOffset ?? 0);
  if (chunks.some(({ entry }) => chunkLength(entry) > MAX_LAZY_CHUNK)) return 0;
  const out = createWriteStream(temp, { flags: 'wx' });
  const write = (piece: Buffer) => (out.write(piece) ? Promise.resolve() : new Promise<void>((resolve) => out.once('drain', () => resolve())));
  let written = 0;
  try {
    for (const { entry, end } of size > 0 ? chunks : []) {
      const length = chunkLength(entry);
      const stored = end - entry.offset!;
      // Deflate never grows data much: a member far larger than its chunk is not a chunk.
      const fits = entry.offset! >= 0 && stored > 0 && end <= found.tocOffset && stored <= 2 * length + MEMBER_SLACK;
      if (!fits || (entry.chunkOffset ?? 0) !== written || length <= 0 || written + length > size) {
        throw new RemoteError(`/${file}: the TOC places a chunk of ${length} bytes at ${entry.chunkOffset ?? 0} in ${entry.offset}-${end} of the layer, which does not fit a file of ${size} bytes`);
      }
      // Inflated piece by piece into the temp file, which nothing trusts until every digest matched.
      const compressed = await client.readRange(repository, layer, entry.offset!, stored);
      const digest = await gunzipPrefix([compressed], length, `/${file}: the chunk at ${entry.chunkOffset ?? 0}`, write);
      if (digest !== entry.chunkDigest) throw new RemoteError(`/${file}: the chunk at ${entry.chunkOffset ?? 0} has digest ${digest}, the TOC says ${entry.chunkDigest}`);
      written += length;
    }
    if (written !== size) throw new RemoteError(`/${file}: its chunks in the TOC hold ${written} bytes, the file has ${size}`);
  } finally {
    await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  }
  return Math.max(1, chunks.length);
}

/**
 * Stream the layers, topmost first, through the digest verifier, gunzip and tar; the first one
 * holding the file wins, once the whole layer has verified (its stream errors otherwise). A
 * whiteout in a layer (OCI image-spec layer changesets: `.wh.NAME`, or `.wh..wh..opq` for a
 * folder's whole content) removes the file from the layers below, as docker and buildah show it.
 */
async function copyStreamed(client: RegistryClient, repository: string, layers: Descriptor[], file: string, temp: string): Promise<void> {
  for (const layer of [...layers].reverse()) {
    const tar = extract();
    let found = false;
    let removed = false;
    /** What this layer has at the path (or at a folder above it) instead of a file, hiding lower layers. */
    let shadowed: string | undefined;
    let twice = false;
    tar.on('entry', (header, stream, next) => {
      const name = layerPath(header.name);
      const skip = () => void stream.on('end', next).resume();
      removed ||= whiteoutRemoves(name, file);
      if (name === file) {
        // A layer that holds a path twice is refused (as buildah does), not read either way.
        if (found || shadowed) {
          twice = true;
          return skip();
        }
        if (header.type !== 'file') {
          shadowed = `/${file} is a ${header.type === 'directory' ? 'folder' : header.type} in the image, not a file (cp copies regular files)`;
          return skip();
        }
        found = true;
        return void pipeline(stream, createWriteStream(temp, { flags: 'wx' })).then(() => next(), next);
      }
      if (file.startsWith(`${name}/`) && header.type !== 'directory') shadowed ??= `/${file} is not in the image (/${name} is a ${header.type}, not a folder)`;
      skip();
    });
    const body = Readable.fromWeb((await client.openBlob(repository, layer)) as import('node:stream/web').ReadableStream<Uint8Array>);
    await pipeline(body, createGunzip(), tar);
    if (twice) throw new RemoteError(`/${file} appears twice in the layer ${layer.digest}`);
    if (found) return;
    if (shadowed) throw new RemoteError(shadowed);
    if (removed) throw new RemoteError(`/${file} is not in the image (a layer removes it with a whiteout)`);
  }
  throw new RemoteError(`/${file} is not in the image`);
}

/** A tar entry's path as extraction resolves it: no leading `/` or `./`, `.` and `..` resolved, no doubled or trailing `/`. */
function layerPath(name: string): string {
  return path.posix.normalize(`/${name}`).slice(1).replace(/\/+$/, '');
}

/** Whether the tar entry `name` (a layerPath) is a whiteout that removes `file` from the layers below. */
function whiteoutRemoves(name: string, file: string): boolean {
  const slash = name.lastIndexOf('/');
  const folder = name.slice(0, slash + 1);
  const base = name.slice(slash + 1);
  if (base === '.wh..wh..opq') return file.startsWith(folder);
  if (!base.startsWith('.wh.') || base.length === 4) return false;
  const gone = folder + base.slice(4);
  return file === gone || file.startsWith(`${gone}/`);
}
