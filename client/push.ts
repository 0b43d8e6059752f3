// Push one tagged image from the store to any OCI registry (Distribution API): blobs the registry
// has are skipped (HEAD) or mounted from another repository; the rest go up in chunks streamed
// from disk (PATCH), resumed from the registry's offset after a reset or a 5xx. Then the platform
// manifests, the index by digest, and the tag last: a tag never points at missing content.
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { registryCredentials } from './auth.ts';
import { ImageLayout } from '../image/layout.ts';
import { ANNOTATION, MEDIA_TYPE, type Descriptor, type ImageIndex, type ImageManifest } from '../image/oci.ts';
import { RegistryClient, RemoteError } from './remote.ts';
import { isTransientNetworkError, withRetries } from './retry.ts';

export const DEFAULT_UPLOAD_CHUNK = 64 * 1024 * 1024;

export interface PushTarget {
  registry: string;
  /** Repository prefix, '' or e.g. `org/models`. */
  prefix: string;
}

/** `HOST[:PORT][/PREFIX]`, e.g. `127.0.0.1:5000` or `ghcr.io/org`. */
export function parsePushTarget(text: string): PushTarget {
  const [registry, ...rest] = text.replace(/^(https?|docker):\/\//, '').replace(/\/+$/, '').split('/');
  if (!registry || !/^[A-Za-z0-9.-]+(:\d+)?$/.test(registry)) throw new RemoteError(`--push "${text}" must be HOST[:PORT][/PREFIX], e.g. 127.0.0.1:5000 or ghcr.io/org`);
  const prefix = rest.join('/').toLowerCase();
  if (prefix && !/^[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/.test(prefix)) throw new RemoteError(`--push "${text}": "${prefix}" is not a valid repository prefix`);
  return { registry, prefix };
}

export function targetRepository(target: PushTarget, image: string): string {
  return target.prefix ? `${target.prefix}/${image}` : image;
}

export interface PushOptions {
  insecure?: boolean;
  chunkSize?: number;
}

export interface PushResult {
  reference: string;
  digest: string;
  /** The tag already pointed at this digest: nothing was sent. */
  upToDate: boolean;
  blobsUploaded: number;
  blobsSkipped: number;
  blobsMounted: number;
  bytesUploaded: number;
}

/** Repositories per registry a blob was pushed to in this process: sources for cross-repository mounts. */
const pushedBlobs = new Map<string, Map<string, string>>();

export class Pusher {
  private constructor(
    readonly client: RegistryClient,
    readonly target: PushTarget,
    private readonly options: PushOptions,
  ) {}

  static async connect(target: PushTarget, options: PushOptions = {}): Promise<Pusher> {
    return new Pusher(new RegistryClient(target.registry, options.insecure, await registryCredentials(target.registry)), target, options);
  }

  /** The index digest the registry's `repository:tag` points at, or undefined. */
  async remoteDigest(repository: string, tag: string): Promise<{ digest: string; revision?: string } | undefined> {
    this.client.scope = `repository:${repository}:pull,push`;
    const response = await this.client.send('GET', `${repository}/manifests/${tag}`, { headers: { Accept: MEDIA_TYPE.index }, accept: (s) => s === 200 || s === 404 });
    if (response.status === 404) {
      await response.body?.cancel();
      return undefined;
    }
    const json = (await response.json()) as ImageIndex;
    return { digest: response.headers.get('docker-content-digest') ?? '', revision: json.annotations?.[ANNOTATION.revision] };
  }

  /**
   * Push `layout:tag`, and the index's revision tag (refused with a RemoteError, before anything is
   * sent, when the registry's revision tag points elsewhere); `onProgress` hears the bytes sent (or found present) so far and the total. */
  async push(layout: ImageLayout, tag: string, onProgress?: (done: number, total: number) => void): Promise<PushResult> {
    const tagged = await layout.resolveTag(tag);
    if (!tagged) throw new RemoteError(`${layout.image}:${tag} is not in the store ${layout.store}`);
    const repository = targetRepository(this.target, layout.image);
    const reference = `${this.target.registry}/${repository}:${tag}`;
    const result: PushResult = { reference, digest: tagged.digest, upToDate: false, blobsUploaded: 0, blobsSkipped: 0, blobsMounted: 0, bytesUploaded: 0 };
    const current = (await this.remoteDigest(repository, tag))?.digest;
    // The revision tag (the Hub commit sha the index is labelled with) is pushed too and never moves.
    const revision = tagged.annotations?.[ANNOTATION.revision];
    const fixed = revision && (await this.remoteDigest(repository, revision))?.digest;
    if (fixed && fixed !== tagged.digest) throw new RemoteError(`${this.target.registry}/${repository}:${revision} is a revision tag and already points at ${fixed}; it never moves (refusing to push ${tagged.digest})`);
    const tags = revision && !fixed ? [revision, tag] : [tag];
    if (current === tagged.digest && tags.length === 1) return { ...result, upToDate: true };

    const index = await layout.readJson<ImageIndex>(tagged.digest);
    const manifests = await Promise.all(index.manifests.map(async (d) => ({ descriptor: d, json: await layout.readJson<ImageManifest>(d.digest) })));
    const blobs = new Map<string, Descriptor>();
    for (const { json } of manifests) for (const blob of [json.config, ...json.layers]) blobs.set(blob.digest, blob);

    const total = [...blobs.values()].reduce((sum, b) => sum + b.size, 0);
    let done = 0;
    const progress = (bytes: number) => onProgress?.((done += bytes), total);
    for (const blob of blobs.values()) {
      const outcome = await this.pushBlob(layout, repository, blob, progress);
      if (outcome === 'skipped') result.blobsSkipped++;
      else if (outcome === 'mounted') result.blobsMounted++;
      else {
        result.blobsUploaded++;
        result.bytesUploaded += blob.size;
      }
    }
    for (const { descriptor } of manifests) await this.putManifest(layout, repository, descriptor, descriptor.digest);
    await this.putManifest(layout, repository, tagged, tagged.digest);
    for (const t of tags) await this.putManifest(layout, repository, tagged, t);
    return result;
  }

  /**
   * Push one manifest of the store that is not an index (e.g. an OCI 1.1 artifact manifest) with
   * its config and layers, by digest; returns the registry's response headers (OCI-Subject says it
   * indexed the manifest's subject for the referrers API).
   */
  async pushManifest(layout: ImageLayout, repository: string, descriptor: Descriptor): Promise<Headers> {
    const json = await layout.readJson<ImageManifest>(descriptor.digest);
    for (const blob of [json.config, ...json.layers]) await this.pushBlob(layout, repository, blob, () => {});
    return (await this.putManifest(layout, repository, descriptor, descriptor.digest)).headers;
  }

  private async putManifest(layout: ImageLayout, repository: string, descriptor: Descriptor, reference: string): Promise<Response> {
    const bytes = await layout.readBlob(descriptor.digest);
    return this.retrying(() => this.client.send('PUT', `${repository}/manifests/${reference}`, { headers: { 'Content-Type': descriptor.mediaType }, body: () => new Uint8Array(bytes) }));
  }

  private async pushBlob(layout: ImageLayout, repository: string, blob: Descriptor, progress: (bytes: number) => void): Promise<'skipped' | 'mounted' | 'uploaded'> {
    const seen = pushedBlobs.get(this.target.registry) ?? new Map<string, string>();
    pushedBlobs.set(this.target.registry, seen);
    const head = await this.retrying(() => this.client.send('HEAD', `${repository}/blobs/${blob.digest}`, { accept: (s) => s === 200 || s === 404 }));
    if (head.status === 200) {
      seen.set(blob.digest, repository);
      progress(blob.size);
      return 'skipped';
    }
    const from = seen.get(blob.digest);
    const query = from && from !== repository ? `?mount=${encodeURIComponent(blob.digest)}&from=${encodeURIComponent(from)}` : '';
    if (query) this.client.scope = `repository:${repository}:pull,push repository:${from}:pull`;
    const start = await this.retrying(() => this.client.send('POST', `${repository}/blobs/uploads/${query}`, { accept: (s) => s === 201 || s === 202 }));
    await start.body?.cancel();
    if (start.status === 201) {
      progress(blob.size);
      return 'mounted';
    }
    await this.upload(layout, repository, blob, this.location(start), progress);
    seen.set(blob.digest, repository);
    return 'uploaded';
  }

  /** Send the blob in chunks; after a failure ask the registry how far it got and go on from there. */
  private async upload(layout: ImageLayout, repository: string, blob: Descriptor, location: string, progress: (bytes: number) => void): Promise<void> {
    const file = layout.blobPath(blob.digest);
    const chunkSize = this.options.chunkSize ?? (Number(process.env.DEPOT_UPLOAD_CHUNK_BYTES) || DEFAULT_UPLOAD_CHUNK);
    let offset = 0;
    let reported = 0;
    await withRetries(
      async (attempt) => {
        if (attempt > 1) ({ location, offset } = await this.uploadStatus(repository, location));
        while (offset < blob.size) {
          const end = Math.min(offset + chunkSize, blob.size) - 1;
          const response = await this.client.send('PATCH', location, {
            headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${offset}-${end}`, 'Content-Length': String(end - offset + 1) },
            body: () => Readable.toWeb(createReadStream(file, { start: offset, end })) as ReadableStream,
          });
          await response.body?.cancel();
          location = this.location(response);
          offset = end + 1;
          if (offset > reported) {
            progress(offset - reported);
            reported = offset;
          }
        }
        const done = await this.client.send('PUT', `${location}${location.includes('?') ? '&' : '?'}digest=${encodeURIComponent(blob.digest)}`, { headers: { 'Content-Length': '0' }, accept: (s) => s === 201 || s === 204 });
        await done.body?.cancel();
      },
      { retryable: isRetryable },
    );
  }

  /** Where an interrupted upload stands: the registry's `Range: 0-N` (or a fresh session when it is gone). */
  private async uploadStatus(repository: string, location: string): Promise<{ location: string; offset: number }> {
    const status = await this.client.send('GET', location, { accept: (s) => s === 204 || s === 404 });
    await status.body?.cancel();
    if (status.status === 404) {
      const start = await this.client.send('POST', `${repository}/blobs/uploads/`, { accept: (s) => s === 202 });
      await start.body?.cancel();
      return { location: this.location(start), offset: 0 };
    }
    const range = /^(?:bytes=)?0-(\d+)$/.exec(status.headers.get('range') ?? '');
    return { location: this.location(status, location), offset: range ? Number(range[1]) + 1 : 0 };
  }

  private location(response: Response, fallback?: string): string {
    const location = response.headers.get('location') ?? fallback;
    if (!location) throw new RemoteError(`${this.target.registry} started an upload without a Location`);
    return new URL(location, this.client.url('')).href;
  }

  private retrying<T>(work: () => Promise<T>): Promise<T> {
    return withRetries(work, { retryable: isRetryable });
  }
}

/** 5xx, 429 and reset connections are worth another try; refused connections and 4xx are not. */
function isRetryable(error: unknown): boolean {
  if (error instanceof RemoteError && error.status !== undefined) return error.status >= 500 || error.status === 429;
  return isTransientNetworkError(error) && !/ECONNREFUSED|ENOTFOUND/.test(String((error as Error).message));
}
