// Push one tagged image from the store to any OCI registry (Distribution spec, "push"): blobs the
// registry has are skipped (HEAD) or mounted from another repository; the rest are uploaded from
// any stream of chunks (POST, PATCH with Content-Range from a bounded window, a cut PATCH resumed
// from the Range the registry reports, PUT ?digest=, DELETE of the session on failure). Then
// the platform manifests, the index by digest, and the tag last: a tag never points at missing
// content. Nothing is believed on the registry's word: every digest it returns is compared and
// every blob and manifest is read back (a blob by a HEAD stating its size and digest and a GET of
// its last byte, else a verified GET),
// so a registry that answers 201 and stores nothing fails the push before the tag. Upload
// Locations may name another origin; the transport sends the registry's credentials to its own
// origin only.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readBounded } from './body.ts';
import { registryCredentials } from './credentials.ts';
import { ImageLayout } from '../image/layout.ts';
import { isRevision, reservedTagKind } from '../models/revision.ts';
import { ANNOTATION, MEDIA_TYPE, sha256Digest, type Descriptor, type ImageIndex, type ImageManifest } from '../image/oci.ts';
import { referrerDescriptors, referrersTag, withReferrer, type ReferrerDescriptor } from './referrers.ts';
import { pullScope, RegistryClient, RemoteError } from './remote.ts';
import { withRetries } from './retry.ts';
import { isRetryable, type SendOptions } from './transport.ts';
import { verifyingStream } from './verify.ts';

export const DEFAULT_UPLOAD_CHUNK = 32 * 1024 * 1024;
/** The smallest PATCH body the halving after a 413 goes down to. */
export const MIN_PATCH_BYTES = 256 * 1024;

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
  /** Bytes per PATCH, the window held in memory (default 32 MiB, DEPOT_UPLOAD_CHUNK_BYTES). */
  chunkSize?: number;
  /** Hears a one-line notice the user should see once (e.g. the PATCH size a body limit forced). */
  onNotice?: (line: string) => void;
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

export interface UploadOptions {
  /**
   * Stops the upload (SIGINT, SIGTERM): checked before every PATCH and before the PUT, and aborts
   * the request in flight; the session is then DELETEd and uploadBlob rejects with its reason.
   */
  signal?: AbortSignal;
  /** When known: the upload must hash to this digest and size, or it is abandoned before the PUT. */
  expected?: Pick<Descriptor, 'digest' | 'size'>;
  /** Hears the bytes the registry has confirmed so far. */
  onProgress?: (bytes: number) => void;
  /**
   * The same bytes again from the start, for when the registry drops the session after a cut
   * PATCH (the CNCF registry does): the upload restarts in a new session. Without it, that fails.
   */
  reopen?: () => AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
  /**
   * The producer's own digest and size of the bytes it yielded (it hashed them as it made them),
   * asked for once they end: the upload does not hash them a second time.
   */
  hashed?: () => Promise<Pick<Descriptor, 'digest' | 'size'>>;
}

/** A manifest (or index) to PUT: its descriptor and exact bytes. */
export interface ManifestBytes {
  descriptor: Descriptor;
  bytes: Buffer;
}

/** The registry answered the first PATCH of an upload with a 4xx: it takes blobs only whole (monolithic PUT). */
export class ChunkedUploadRefused extends RemoteError {}

/** The registry no longer knows the upload session: only a restart from byte 0 can go on. */
class SessionLost extends RemoteError {}

/** Says what cut the transfer (`cut`, when one did) as well as that the session is gone. */
function sessionLost(registry: string, cut: unknown): SessionLost {
  return new SessionLost(`${cut ? (cut as Error).message : `${registry} no longer knows the upload session`}${cut ? ` (and ${registry} dropped the upload session)` : ''}`);
}

/** Repositories per registry a blob was pushed to in this process: sources for cross-repository mounts. */
const pushedBlobs = new Map<string, Map<string, string>>();

export class Pusher {
  /** The largest PATCH body this registry takes, once a 413 (a body size limit) has said so. */
  private patchLimit: number | undefined;
  private patchLimitSaid = false;

  private constructor(
    readonly client: RegistryClient,
    readonly target: PushTarget,
    private readonly options: PushOptions,
  ) {}

  static async connect(target: PushTarget, options: PushOptions = {}): Promise<Pusher> {
    return new Pusher(new RegistryClient(target.registry, { insecure: options.insecure, credentials: await registryCredentials(target.registry, { configured: true }) }), target, options);
  }

  /** Bytes per PATCH: the window an upload holds in memory. */
  get uploadChunk(): number {
    return this.options.chunkSize ?? (Number(process.env.DEPOT_UPLOAD_CHUNK_BYTES) || DEFAULT_UPLOAD_CHUNK);
  }

  /** The index digest the registry's `repository:tag` points at (verified), or undefined. */
  async remoteDigest(repository: string, tag: string): Promise<{ digest: string; revision?: string } | undefined> {
    const found = await this.client.manifest(repository, tag, { optional: true, scope: pushScope(repository) });
    return found && { digest: found.digest, revision: found.json.annotations?.[ANNOTATION.revision] };
  }

  /**
   * Push `layout:tag`, and the index's revision tag (refused with a RemoteError, before anything is
   * sent, when the registry's revision tag points elsewhere); `onProgress` hears the bytes sent
   * (or found present) so far and the total.
   */
  async push(layout: ImageLayout, tag: string, onProgress?: (done: number, total: number) => void): Promise<PushResult> {
    const tagged = await layout.resolveTag(tag);
    if (!tagged) throw new RemoteError(`${layout.image}:${tag} is not in the store ${layout.store}`);
    const repository = targetRepository(this.target, layout.image);
    const reference = `${this.target.registry}/${repository}:${tag}`;
    const result: PushResult = { reference, digest: tagged.digest, upToDate: false, blobsUploaded: 0, blobsSkipped: 0, blobsMounted: 0, bytesUploaded: 0 };
    const current = (await this.remoteDigest(repository, tag))?.digest;
    const tags = await this.imageTags(repository, tag, tagged);
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
    const read = async (descriptor: Descriptor) => ({ descriptor, bytes: await layout.readBlob(descriptor.digest) });
    await this.putImage(repository, tags, await Promise.all(manifests.map(({ descriptor }) => read(descriptor))), await read(tagged));
    return result;
  }

  /**
   * Push a referrer of the store (an OCI 1.1 artifact manifest whose `subject` is an image already
   * pushed) with its config and layers, by digest, each read back like any push. A registry with
   * the referrers API says so with the OCI-Subject header, and its list then shows the referrer
   * ('referrers'); for one without (or whose list does not show it), the
   * referrers tag schema's `sha256-<hex>` index is read (verified), extended and PUT ('tag'), as
   * distribution-spec 1.1 asks of clients. RemoteError on any failure.
   */
  async pushReferrer(layout: ImageLayout, repository: string, referrer: ReferrerDescriptor): Promise<'referrers' | 'tag'> {
    const json = await layout.readJson<ImageManifest & { subject?: Descriptor }>(referrer.digest);
    const subject = json.subject?.digest;
    if (!subject) throw new RemoteError(`${referrer.digest} in ${layout.image} has no subject: it refers to nothing`);
    for (const blob of [json.config, ...json.layers]) await this.pushBlob(layout, repository, blob, () => {});
    const put = await this.putManifest(repository, { descriptor: referrer, bytes: await layout.readBlob(referrer.digest) }, referrer.digest);
    // OCI-Subject says the registry indexed it; believed only once its referrers list shows it.
    if (put.get('oci-subject') === subject && (await this.client.referrers(repository, subject, { scope: pushScope(repository) })).some((d) => d.digest === referrer.digest)) return 'referrers';
    const tag = referrersTag(subject);
    const current = await this.client.manifest(repository, tag, { optional: true, scope: pushScope(repository) });
    const index = withReferrer(current ? referrerDescriptors(current.json, `${this.target.registry}/${repository}:${tag}`) : [], referrer);
    if (index) {
      const bytes = Buffer.from(JSON.stringify(index));
      await this.putManifest(repository, { descriptor: { mediaType: MEDIA_TYPE.index, digest: sha256Digest(bytes), size: bytes.length }, bytes }, tag);
    }
    return 'tag';
  }

  /**
   * The tags an image gets: `tag`, and first the revision tag its index is labelled with
   * (ANNOTATION.revision, the Hub commit) unless the registry's already points at it. A tag with
   * the form of a revision (models/revision.ts isRevision) is a revision tag whoever pushes it: it
   * must be the image's own revision and never moves. RemoteError, before anything is tagged, when
   * the revision label is not a Hub commit, when `tag` is another revision's tag or has the form of
   * a referrers tag (`sha256-<hex>`) or an upper-case revision, or when the
   * registry's revision tag points elsewhere.
   */
  async imageTags(repository: string, tag: string, index: Pick<Descriptor, 'digest' | 'annotations'>): Promise<string[]> {
    const revision = index.annotations?.[ANNOTATION.revision];
    const image = `${this.target.registry}/${repository}`;
    if (revision !== undefined && !isRevision(revision)) throw new RemoteError(`${index.digest} is labelled revision "${revision}", not a Hub commit (40 lower-case hex digits): refusing to push it to ${image}`);
    if (reservedTagKind(tag) && !isRevision(tag)) throw new RemoteError(`${image}:${tag} has the form of a ${reservedTagKind(tag)} tag: refusing to push an image under it`);
    if (isRevision(tag) && tag !== revision) throw new RemoteError(`${image}:${tag} has the form of a revision tag but the image ${index.digest} is of revision ${revision ?? '(none)'}: a revision tag names its own revision only`);
    if (!revision) return [tag];
    const fixed = (await this.remoteDigest(repository, revision))?.digest;
    if (fixed && fixed !== index.digest) throw new RemoteError(`${image}:${revision} is a revision tag and already points at ${fixed}; it never moves (refusing to push ${index.digest})`);
    return fixed || revision === tag ? [tag] : [revision, tag];
  }

  /**
   * The end of every push, once the blobs are there: the platform manifests by digest, the index
   * by digest, then `tags` in order (last, so none points at missing content), each read back.
   */
  async putImage(repository: string, tags: string[], manifests: ManifestBytes[], index: ManifestBytes): Promise<void> {
    for (const manifest of manifests) await this.putManifest(repository, manifest, manifest.descriptor.digest);
    for (const reference of [index.descriptor.digest, ...tags]) await this.putManifest(repository, index, reference);
  }

  /**
   * PUT the manifest `descriptor` (its exact `bytes`) under `reference` (its digest or a tag),
   * then read it back: the Docker-Content-Digest the registry answers and the manifest it then
   * serves must both be `descriptor.digest`. Returns the PUT response's headers. Bytes that do
   * not hash to the descriptor (a corrupt store copy) are refused before anything is sent.
   */
  private async putManifest(repository: string, { descriptor, bytes }: ManifestBytes, reference: string): Promise<Headers> {
    const what = `${this.target.registry}/${repository}${reference === descriptor.digest ? '@' : ':'}${reference}`;
    if (sha256Digest(bytes) !== descriptor.digest) throw new RemoteError(`the store's copy of ${descriptor.digest} is corrupt: not pushing ${what}`);
    const put = await this.retrying(() => this.send('PUT', `${repository}/manifests/${reference}`, { headers: { 'Content-Type': descriptor.mediaType }, body: () => new Uint8Array(bytes), scope: pushScope(repository) }));
    await put.body?.cancel().catch(() => {});
    const answered = put.headers.get('docker-content-digest');
    if (answered && answered !== descriptor.digest) throw new RemoteError(`${what}: the registry stored the manifest as ${answered}, not ${descriptor.digest}`);
    const stored = await this.client.manifest(repository, reference, { optional: true, scope: pushScope(repository) });
    if (stored?.digest !== descriptor.digest) throw new RemoteError(`${what}: the registry accepted the manifest but serves ${stored ? stored.digest : 'nothing'} when asked for it`);
    return put.headers;
  }

  private async pushBlob(layout: ImageLayout, repository: string, blob: Descriptor, progress: (bytes: number) => void): Promise<'skipped' | 'mounted' | 'uploaded'> {
    const seen = pushedBlobs.get(this.target.registry) ?? new Map<string, string>();
    pushedBlobs.set(this.target.registry, seen);
    const lastByte = await layout.lastByte(blob);
    if (await this.hasBlob(repository, blob, lastByte)) {
      seen.set(blob.digest, repository);
      progress(blob.size);
      return 'skipped';
    }
    const from = seen.get(blob.digest);
    if (from && from !== repository) {
      const query = `?mount=${encodeURIComponent(blob.digest)}&from=${encodeURIComponent(from)}`;
      const start = await this.retrying(() => this.send('POST', `${repository}/blobs/uploads/${query}`, { accept: (s) => s === 201 || s === 202, scope: `${pushScope(repository)} ${pullScope(from)}` }));
      await start.body?.cancel().catch(() => {});
      if (start.status === 201) {
        await this.checkBlobStored(repository, blob, lastByte);
        progress(blob.size);
        return 'mounted';
      }
      await this.cancelUpload(repository, location(start, this.client.transport.url(`${repository}/blobs/uploads/`)));
    }
    const read = () => createReadStream(layout.blobPath(blob.digest), { highWaterMark: 1 << 20 });
    await this.uploadBlob(repository, read(), { expected: blob, onProgress: progress, reopen: read });
    seen.set(blob.digest, repository);
    return 'uploaded';
  }

  /**
   * Upload one blob from `chunks` (any async iterable of bytes; its total size need not be known)
   * to `repository`: POST a session, PATCH windows of `chunkSize` bytes with Content-Range (the
   * only bytes held in memory), resume a cut PATCH from the Range the registry reports (GET on the
   * session), PUT ?digest= at the end, then HEAD it back. On failure the session is DELETEd.
   * Returns the blob's digest and size. Throws RemoteError.
   */
  async uploadBlob(repository: string, chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, options: UploadOptions = {}): Promise<Pick<Descriptor, 'digest' | 'size'>> {
    let sent = 0;
    let reported = 0; // progress never goes backwards when a restart sends bytes again
    const onProgress = (bytes: number) => {
      sent += bytes;
      if (sent > reported) options.onProgress?.(sent - reported);
      reported = Math.max(reported, sent);
    };
    return withRetries((attempt) => this.uploadOnce(repository, attempt === 1 ? chunks : options.reopen!(), { ...options, onProgress }), {
      retryable: (error) => error instanceof SessionLost && options.reopen !== undefined,
      onRetry: () => (sent = 0),
    });
  }

  private async uploadOnce(repository: string, chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, options: UploadOptions): Promise<Pick<Descriptor, 'digest' | 'size'>> {
    const chunkSize = this.uploadChunk;
    const startUrl = this.client.transport.url(`${repository}/blobs/uploads/`);
    const { signal } = options;
    // An abort while the POST is answered would lose the Location of a session the registry
    // opened: the POST gets a short grace, then the session is DELETEd like any other.
    const post = { accept: (s: number) => s === 202, scope: pushScope(repository), signal: withGrace(signal, OPEN_SESSION_GRACE_MS) };
    const start = await this.retrying(() => this.send('POST', startUrl, post));
    await start.body?.cancel().catch(() => {});
    let session = location(start, startUrl);
    const hash = options.hashed ? undefined : createHash('sha256');
    let size = 0;
    try {
      signal?.throwIfAborted();
      let lastByte: number | undefined;
      for await (const window of windows(chunks, chunkSize)) {
        hash?.update(window);
        session = await this.patch(repository, session, window, size, signal);
        size += window.length;
        if (window.length > 0) lastByte = window[window.length - 1];
        options.onProgress?.(window.length);
      }
      const produced = hash ? undefined : await options.hashed!();
      if (produced && produced.size !== size) throw new RemoteError(`the producer says it made ${produced.size} bytes, but ${size} were read: not pushing ${produced.digest}`);
      const digest = produced?.digest ?? `sha256:${hash!.digest('hex')}`;
      if (options.expected && (digest !== options.expected.digest || size !== options.expected.size)) {
        throw new RemoteError(`the blob read for ${options.expected.digest} has ${size} bytes and digest ${digest}: not pushing it`);
      }
      const url = new URL(session);
      url.searchParams.set('digest', digest);
      const done = await this.send('PUT', url.href, { headers: { 'Content-Length': '0' }, accept: (s) => s === 201 || s === 204, scope: pushScope(repository), signal });
      await done.body?.cancel().catch(() => {});
      const answered = done.headers.get('docker-content-digest');
      if (answered && answered !== digest) throw new RemoteError(`${this.target.registry}/${repository}: the registry stored the blob as ${answered}, not ${digest}`);
      await this.checkBlobStored(repository, { digest, size }, lastByte);
      return { digest, size };
    } catch (error) {
      await this.cancelUpload(repository, session);
      throw error;
    }
  }

  /**
   * PATCH `window` at `offset`, in pieces when the registry limits body size: a 413 (Payload Too
   * Large, e.g. nginx's client_max_body_size) halves the PATCH down to MIN_PATCH_BYTES, the size
   * that worked is kept for the rest of the push and said once (onNotice); below the floor it
   * fails with one line naming --upload-chunk. A front end that answers 413 without reading the
   * body resets the connection instead (the client sees EPIPE/ECONNRESET, never the status): a
   * large PATCH reset twice in a row is halved the same way, from where the session says it stands.
   * Returns the next Location.
   */
  private async patch(repository: string, session: string, window: Uint8Array, offset: number, signal?: AbortSignal): Promise<string> {
    for (let at = 0; at < window.length; ) {
      const piece = window.subarray(at, at + (this.patchLimit ?? window.length));
      try {
        session = await this.patchPiece(repository, session, piece, offset + at, signal, piece.length > MIN_PATCH_BYTES ? 2 : undefined);
      } catch (error) {
        const half = Math.ceil(piece.length / 2);
        const reset = isRetryable(error) && !(error instanceof RemoteError && error.status !== undefined) && half >= MIN_PATCH_BYTES;
        if (reset) {
          let stored: number;
          ({ session, stored } = await this.uploadStatus(repository, session, offset + at, piece.length, error, signal));
          at = stored - offset;
          this.patchLimit = half;
          continue;
        }
        if (!(error instanceof RemoteError && error.status === 413)) throw error;
        if (half < MIN_PATCH_BYTES) {
          throw new RemoteError(`${this.target.registry} refuses PATCH bodies of ${piece.length} bytes (413 Payload Too Large), even at the ${MIN_PATCH_BYTES / 1024} KiB floor: raise its body size limit`);
        }
        this.patchLimit = half;
        continue;
      }
      at += piece.length;
      if (this.patchLimit && !this.patchLimitSaid) {
        this.patchLimitSaid = true;
        this.options.onNotice?.(`${this.target.registry} limits request bodies (413 Payload Too Large for larger PATCHes): sending ${this.patchLimit}-byte PATCHes (--upload-chunk ${this.patchLimit} or DEPOT_UPLOAD_CHUNK_BYTES=${this.patchLimit} sends them so from the start)`);
      }
    }
    return session;
  }

  /** PATCH `window` at `offset`; after a failure ask the session how far it got and send the rest. Returns the next Location. */
  private async patchPiece(repository: string, session: string, window: Uint8Array, offset: number, signal?: AbortSignal, attempts?: number): Promise<string> {
    let from = offset;
    let cut: unknown;
    return withRetries(
      async (attempt) => {
        if (attempt > 1) ({ session, stored: from } = await this.uploadStatus(repository, session, offset, window.length, cut, signal));
        if (from === offset + window.length) return session;
        const part = window.subarray(from - offset);
        const response = await this.send('PATCH', session, {
          headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${from}-${offset + window.length - 1}`, 'Content-Length': String(part.length) },
          body: () => part as unknown as BodyInit,
          accept: (s) => s === 202 || s === 204 || s === 404 || (attempt > 1 && s === 416) || (offset === 0 && refusesChunks(s)),
          scope: pushScope(repository),
          signal,
        });
        await response.body?.cancel().catch(() => {});
        if (response.status === 404) throw sessionLost(this.target.registry, cut);
        // The registry holds another length than its Range let us assume (the ambiguous `0-0`):
        // the session cannot go on, a new one from byte 0 can (the reopen path).
        if (response.status === 416) throw new SessionLost(`${(cut as Error).message} (and ${this.target.registry} refused the resume at byte ${from}: 416)`);
        if (refusesChunks(response.status)) throw new ChunkedUploadRefused(`${this.target.registry} refuses chunked uploads (PATCH answered ${response.status})`, { status: response.status });
        return location(response, session);
      },
      { retryable: isRetryable, onRetry: (error) => (cut = error), attempts },
    );
  }

  /**
   * Where an interrupted upload stands: the registry's `Range: 0-N`, which must lie within the
   * window being sent. `0-0` says 0 bytes as well as 1 (the CNCF registry answers it for both), so
   * in the first window it counts as nothing stored: resent from byte 0, a registry holding 1 byte
   * answers 416 and the upload restarts in a new session.
   */
  private async uploadStatus(repository: string, session: string, offset: number, length: number, cut: unknown, signal?: AbortSignal): Promise<{ session: string; stored: number }> {
    const status = await this.send('GET', session, { accept: (s) => s === 204 || s === 404, scope: pushScope(repository), signal });
    await status.body?.cancel().catch(() => {});
    if (status.status === 404) throw sessionLost(this.target.registry, cut);
    const range = /^(?:bytes=)?0-(\d+)$/.exec(status.headers.get('range') ?? '');
    const stored = range && !(offset === 0 && range[1] === '0') ? Number(range[1]) + 1 : 0;
    if (stored < offset || stored > offset + length) throw new RemoteError(`${this.target.registry}: the upload session reports ${stored} bytes stored, but ${offset} were confirmed before: cannot resume`);
    return { session: location(status, session), stored };
  }

  /**
   * Whether the registry proves it holds `blob`. A HEAD 200 (Distribution spec, "checking if
   * content exists") must state both the blob's size (Content-Length) and its digest
   * (Docker-Content-Digest), and then the blob's last byte must be served (a ranged GET): a store
   * can keep sizes and digests and lose the bytes. A HEAD that leaves either header out proves
   * nothing, so then the blob is read back whole with a GET, streamed through the digest verifier
   * (nothing held); so is a ranged GET answered 200. 404 (to the HEAD or the GET): absent.
   * RemoteError when the registry states or serves another size or digest, or a last byte other
   * than `lastByte` (given when the caller has the blob's bytes).
   */
  async hasBlob(repository: string, blob: Pick<Descriptor, 'digest' | 'size'>, lastByte?: number): Promise<boolean> {
    const path = `${repository}/blobs/${blob.digest}`;
    const head = await this.send('HEAD', path, { accept: (s) => s === 200 || s === 404, scope: pushScope(repository) });
    await head.body?.cancel().catch(() => {});
    if (head.status === 404) return false;
    const length = head.headers.get('content-length');
    const digest = head.headers.get('docker-content-digest');
    const what = `${this.target.registry}/${repository}@${blob.digest}`;
    if ((length !== null && Number(length) !== blob.size) || (digest && digest !== blob.digest)) {
      throw new RemoteError(`${what}: the registry holds ${length} bytes with digest ${digest ?? 'unstated'}, not ${blob.size} bytes`);
    }
    const stated = length !== null && digest !== null;
    if (stated && blob.size === 0) return true;
    const last = `${blob.size - 1}-${blob.size - 1}`;
    const got = await this.send('GET', path, { headers: stated ? { Range: `bytes=${last}` } : {}, accept: (s) => s === 200 || s === 404 || (stated && s === 206), scope: pushScope(repository) });
    if (got.status === 404) {
      await got.body?.cancel().catch(() => {});
      return false;
    }
    if (got.status === 206) {
      const range = got.headers.get('content-range');
      const served = await readBounded(got, 1, `${what} (its last byte)`);
      if (range !== `bytes ${last}/${blob.size}` || served.length !== 1) throw new RemoteError(`${what}: asked for its last byte, the registry answered ${range ?? 'no Content-Range'} with ${served.length} bytes`);
      if (lastByte !== undefined && served[0] !== lastByte) throw new RemoteError(`${what}: its last byte is ${served[0]}, the blob's is ${lastByte}: the registry does not hold this blob`);
      return true;
    }
    const why = stated ? 'its ranged GET answered 200' : `its HEAD states no ${length === null ? 'Content-Length' : 'Docker-Content-Digest'}`;
    const reader = (got.body ?? new Blob([]).stream()).pipeThrough(verifyingStream(blob, `${what} (read back: ${why})`)).getReader();
    while (!(await reader.read()).done);
    return true;
  }

  /**
   * Upload one blob whole (Distribution spec, monolithic upload: POST a session, then one PUT
   * `?digest=` carrying every byte), for registries that refuse PATCH and for small blobs.
   * `body` makes the bytes afresh for each attempt, `expected` is what they must hash to
   * (the caller has checked); the session is DELETEd on failure and the blob read back.
   */
  async uploadWhole(repository: string, body: () => BodyInit, expected: Pick<Descriptor, 'digest' | 'size'>): Promise<void> {
    const startUrl = this.client.transport.url(`${repository}/blobs/uploads/`);
    const start = await this.retrying(() => this.send('POST', startUrl, { accept: (s) => s === 202, scope: pushScope(repository) }));
    await start.body?.cancel().catch(() => {});
    const session = location(start, startUrl);
    try {
      const url = new URL(session);
      url.searchParams.set('digest', expected.digest);
      const headers = { 'Content-Type': 'application/octet-stream', 'Content-Length': String(expected.size) };
      const done = await this.send('PUT', url.href, { headers, body, accept: (s) => s === 201 || s === 204, scope: pushScope(repository) });
      await done.body?.cancel().catch(() => {});
      const answered = done.headers.get('docker-content-digest');
      if (answered && answered !== expected.digest) throw new RemoteError(`${this.target.registry}/${repository}: the registry stored the blob as ${answered}, not ${expected.digest}`);
      await this.checkBlobStored(repository, expected);
    } catch (error) {
      await this.cancelUpload(repository, session);
      throw error;
    }
  }

  private async checkBlobStored(repository: string, blob: Pick<Descriptor, 'digest' | 'size'>, lastByte?: number): Promise<void> {
    if (!(await this.hasBlob(repository, blob, lastByte))) throw new RemoteError(`${this.target.registry}/${repository}@${blob.digest}: the registry accepted the blob but does not have it when asked`);
  }

  private async cancelUpload(repository: string, session: string): Promise<void> {
    await this.send('DELETE', session, { accept: () => true, scope: pushScope(repository) }).then((r) => r.body?.cancel(), () => {});
  }

  private send(method: string, path: string, options: SendOptions): Promise<Response> {
    return this.client.transport.send(method, path, options);
  }

  private retrying<T>(work: () => Promise<T>): Promise<T> {
    return withRetries(work, { retryable: isRetryable });
  }
}

/** An upload session URL from the Location header, resolved against the request (RFC 9110 §10.2.2). */
function location(response: Response, requestUrl: string): string {
  const value = response.headers.get('location');
  if (!value) return requestUrl;
  const url = new URL(value, requestUrl);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new RemoteError(`the registry named an upload Location that is not http(s): ${value}`);
  return url.href;
}

/** Re-cut `chunks` into windows of exactly `size` bytes (the last may be shorter). */
async function* windows(chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let length = 0;
  for await (const chunk of chunks) {
    let rest = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    while (rest.length > 0) {
      const take = rest.subarray(0, size - length);
      parts.push(take);
      length += take.length;
      rest = rest.subarray(take.length);
      if (length === size) {
        yield Buffer.concat(parts, length);
        parts = [];
        length = 0;
      }
    }
  }
  if (length > 0) yield Buffer.concat(parts, length);
}

/** A 4xx to a first PATCH that says "not this way" rather than "not you", "not there" or "not so big" (413). */
function refusesChunks(status: number): boolean {
  return status >= 400 && status < 500 && ![401, 403, 404, 413, 416, 429].includes(status);
}

function pushScope(repository: string): string {
  return `repository:${repository}:pull,push`;
}


/** How long the POST that opens an upload session may still take after an abort, in ms. */
const OPEN_SESSION_GRACE_MS = 2000;

/** A signal that aborts `graceMs` after `signal` does, with its reason (undefined stays undefined). */
function withGrace(signal: AbortSignal | undefined, graceMs: number): AbortSignal | undefined {
  if (!signal) return undefined;
  const controller = new AbortController();
  const later = () => setTimeout(() => controller.abort(signal.reason), graceMs).unref();
  if (signal.aborted) later();
  else signal.addEventListener('abort', later, { once: true });
  return controller.signal;
}
