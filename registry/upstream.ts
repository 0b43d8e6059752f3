// Pull-through cache: what the store misses is fetched from an upstream registry, checked
// against its digest while it streams to the client, and committed to the store only then.
// Concurrent misses for one blob or manifest share a single upstream fetch. Cached tags are
// rechecked against the upstream once they are older than the tag TTL (a model's `latest` moves
// when its catalog sha is updated); digests and revision tags never change, so they are never
// rechecked (and a revision tag is cached only when its manifest is labelled with that revision).
import { readBounded } from '../client/body.ts';
import { verifyingStream } from '../client/verify.ts';
import { ANNOTATION } from '../image/oci.ts';
import { isRevision } from '../models/revision.ts';
import type { Credentials } from '../client/auth.ts';
import { MANIFEST_ACCEPT, pullScope, RegistryClient, type RemoteError } from '../client/remote.ts';
import { blobHeaders, type BlobReply, type BlobRequest, type PullThrough } from './app.ts';
import { rangeInvalid, RegistryError, upstreamFailed } from './errors.ts';
import { multipartByteranges, parseRange, type ByteRange } from './range.ts';
import { concatBodies, type Piece } from './pump.ts';
import { isTag, type Reference } from './names.ts';
import type { ReferrerDescriptor } from '../client/referrers.ts';
import { manifestMediaType, type ManifestRecord, type RegistryStore } from './store.ts';

/** The largest tag list read from the upstream. */
const MAX_TAG_LIST = 4 * 1024 * 1024;
/** Pages of an upstream tag list followed at most. */
const MAX_TAG_PAGES = 1000;
export const DEFAULT_TAG_TTL_MS = 5 * 60_000;

export interface PullThroughOptions {
  /** Fail an upstream request that sends nothing (headers or body bytes) for this long (default 30 s, DEPOT_IDLE_TIMEOUT_MS). */
  timeoutMs?: number;
  /** How long a cached tag is served before the upstream is asked again (default 5 min). */
  tagTtlMs?: number;
  /** Told about failed transfers (the client only sees a cut connection or a 502). */
  onError?: (message: string) => void;
  /** Sent to the upstream's own origin (and the token realm its challenge names) only. */
  credentials?: Credentials;
  /** Total time for an upstream manifest, tag list or HEAD, retries, redirects, auth and body included (default 30 s): waiters get a 502 by then. */
  deadlineMs?: number;
  /** Total time for one blob fill, retries included, which runs at the upstream's pace whoever reads it (default 30 min). */
  fillDeadlineMs?: number;
}

export const DEFAULT_UPSTREAM_DEADLINE_MS = 30_000;
export const DEFAULT_FILL_DEADLINE_MS = 30 * 60_000;
/**
 * Bytes a fill queues for its first client at most: a client slower than the upstream falls
 * behind by no more than this, then continues from the store once the fill is committed.
 */
const RELAY_WINDOW = 1024 * 1024;
/**
 * A range answer covering at least this share of the blob is not relayed: the request joins the
 * one fill and is served verified from the store (N open-ended ranges are one upstream transfer).
 */
const JOIN_FILL_SHARE = 0.5;

/** Media types a manifest from the upstream may have (OCI and Docker manifests and indexes, OCI artifact manifests); anything else is refused. */
const MANIFEST_TYPES = new Set([...MANIFEST_ACCEPT.split(', '), 'application/vnd.oci.artifact.manifest.v1+json']);

/** Statuses meaning "the upstream does not have it (for us)". */
const ABSENT = new Set([401, 403, 404]);
/**
 * The same for a blob: a 403 there is often a storage host refusing an expired signed URL the
 * registry redirected to, an upstream failure (502), not an absent blob (which a Worker caches).
 */
const BLOB_ABSENT = new Set([401, 404]);
/** How long a blob whose fill failed its digest gets no background fill; how many blobs such maps remember. */
const REFUSED_MS = 10 * 60_000;
const REFUSED_KEPT = 10_000;

/**
 * Headers for blob bytes relayed from the upstream before they are verified: no ETag, no
 * Docker-Content-Digest and not cacheable, so no cache or client takes them as the content of
 * `digest` (the Content-Length is the upstream's claim).
 */
function unverifiedHeaders(digest: string, extra: Record<string, string>): Record<string, string> {
  const { ETag: _etag, 'Docker-Content-Digest': _digest, ...headers } = blobHeaders(digest, extra);
  return { ...headers, 'Cache-Control': 'no-store' };
}

/** A Content-Length header's value as a number, or undefined when it is absent or not a plain count. */
function contentLength(response: Response): number | undefined {
  const length = response.headers.get('content-length');
  return length !== null && /^\d{1,15}$/.test(length) ? Number(length) : undefined;
}

/**
 * A body of exactly `length` bytes: it errors (the client sees a cut transfer, never a complete
 * one; the upstream is no longer read) as soon as it runs past `length`, or when it ends short.
 */
function exactly(length: number, what: string): TransformStream<Uint8Array, Uint8Array> {
  let sent = 0;
  return new TransformStream({
    transform(chunk, controller) {
      sent += chunk.length;
      if (sent > length) throw new Error(`${what}: the upstream sent more than the ${length} bytes it stated`);
      controller.enqueue(chunk);
    },
    flush() {
      if (sent < length) throw new Error(`${what}: the upstream sent ${sent} of the ${length} bytes it stated`);
    },
  });
}

/** A fetch into the store that others can wait for. */
interface Fill {
  done: Promise<void>;
  /** The upstream sent the whole body and it did not match the digest: asking again is no use. */
  refused?: true;
}

export function createPullThrough(store: RegistryStore, upstreamUrl: string, options: PullThroughOptions = {}): PullThrough {
  const writer = store.writer;
  if (!writer) throw new Error('the store cannot be written to, so it cannot cache an upstream');
  let parsed: URL;
  try {
    parsed = new URL(upstreamUrl);
  } catch {
    throw new Error(`--upstream must be a URL such as https://registry.example.com, not "${upstreamUrl}"`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new Error(`--upstream must be an http:// or https:// URL, not "${upstreamUrl}"`);
  }
  if (parsed.username || parsed.password) {
    throw new Error(`--upstream must not carry credentials in its URL (they would be shown in error messages): give them as DEPOT_REGISTRY_USERNAME/DEPOT_REGISTRY_PASSWORD (serve) or UPSTREAM_USER/UPSTREAM_PASSWORD (the Worker)`);
  }
  const base = upstreamUrl.replace(/\/+$/, '');
  const connection = { insecure: parsed.protocol === 'http:', idleTimeoutMs: options.timeoutMs, credentials: options.credentials };
  const deadlineMs = options.deadlineMs ?? DEFAULT_UPSTREAM_DEADLINE_MS;
  /**
   * `name@digest` -> when its fill last failed its digest: small relayed ranges do not start
   * another background fill of it for REFUSED_MS (each lazy read would fetch the whole blob again).
   */
  const refusedAt = new Map<string, number>();
  const recentlyRefused = (key: string) => Date.now() - (refusedAt.get(key) ?? -Infinity) < REFUSED_MS;
  /** Blob path -> the size its HEAD stated (statedSize). */
  const statedSizes = new Map<string, number>();
  const client = new RegistryClient(parsed.host, { ...connection, deadlineMs });
  const blobClient = new RegistryClient(parsed.host, { ...connection, deadlineMs: options.fillDeadlineMs ?? DEFAULT_FILL_DEADLINE_MS });
  const manifestFetches = new Map<string, Promise<ManifestRecord | undefined>>();
  const tagTtlMs = options.tagTtlMs ?? DEFAULT_TAG_TTL_MS;
  /** `name:tag` -> when the upstream was last asked about it. */
  const tagsCheckedAt = new Map<string, number>();
  const fills = new Map<string, Fill>();
  /** A request to the upstream; RegistryError 502 when it cannot be reached or fails. */
  async function request(method: string, path: string, options: { headers?: Record<string, string>; accept: (status: number) => boolean }, via = client): Promise<Response> {
    const name = path.replace(/\/(manifests|blobs|tags)\/.*$/, '');
    try {
      return await via.transport.send(method, path, { ...options, scope: pullScope(name) });
    } catch (error) {
      throw upstreamFailed({ upstream: base, path, error: (error as Error).message });
    }
  }
  const referenceKey = (name: string, reference: Reference) => `${name}:${reference.kind === 'tag' ? reference.tag : reference.digest}`;

  function fail(status: number, what: string): never {
    throw upstreamFailed({ upstream: base, status, what });
  }

  async function fetchManifest(name: string, reference: Reference): Promise<ManifestRecord | undefined> {
    const ref = reference.kind === 'tag' ? reference.tag : reference.digest;
    let found;
    try {
      found = await client.manifest(name, ref, { optional: true });
    } catch (error) {
      const status = (error as RemoteError).status;
      if (status !== undefined && ABSENT.has(status)) return undefined;
      throw upstreamFailed({ upstream: base, what: `manifest ${name}:${ref}`, error: (error as Error).message });
    }
    if (!found) return undefined;
    const mediaType = manifestMediaType(found.json) ?? found.mediaType;
    if (!mediaType) fail(502, `manifest ${name}:${ref} has no media type`);
    if (!MANIFEST_TYPES.has(mediaType)) throw upstreamFailed({ upstream: base, what: `manifest ${name}:${ref}`, error: `media type ${JSON.stringify(mediaType.slice(0, 100))} is not an OCI or Docker manifest or index` });
    // A revision tag is cached for good: only an image labelled with that revision may fill it.
    const label = (found.json as { annotations?: Record<string, unknown> }).annotations?.[ANNOTATION.revision];
    if (reference.kind === 'tag' && isRevision(reference.tag) && label !== reference.tag) {
      throw upstreamFailed({ upstream: base, what: `manifest ${name}:${ref}`, error: `the revision tag points at ${found.digest}, labelled revision ${JSON.stringify(typeof label === 'string' ? label.slice(0, 100) : label ?? null)}: not cached` });
    }
    const record: ManifestRecord = { digest: found.digest, mediaType, bytes: new Uint8Array(found.bytes) };
    await writer!.putManifest(name, record, reference.kind === 'tag' ? reference.tag : undefined);
    if (reference.kind === 'tag') tagsCheckedAt.set(referenceKey(name, reference), Date.now());
    return record;
  }

  /**
   * A cached tag, rechecked with a HEAD: when the upstream's tag has moved, its new manifest is
   * fetched and the tag updated. A tag the upstream does not know (an image built into this
   * store) or an upstream that fails keeps the cached manifest, which is served either way.
   */
  async function revalidateTag(name: string, tag: string, cached: ManifestRecord): Promise<ManifestRecord> {
    tagsCheckedAt.set(referenceKey(name, { kind: 'tag', tag }), Date.now()); // a failing upstream is asked again only after the TTL
    try {
      const res = await request('HEAD', `${name}/manifests/${tag}`, { headers: { Accept: MANIFEST_ACCEPT }, accept: () => true });
      await res.body?.cancel().catch(() => {});
      if (res.status >= 500) fail(res.status, `manifest ${name}:${tag}`);
      if (!res.ok || res.headers.get('docker-content-digest') === cached.digest) return cached;
      return (await fetchManifest(name, { kind: 'tag', tag })) ?? cached;
    } catch (error) {
      options.onError?.(`${name}:${tag}: ${(error as Error)?.message ?? error}; serving the cached ${cached.digest}`);
      return cached;
    }
  }

  /** A manifest the store misses, or (with `cached`) a cached tag that may have moved upstream. */
  function manifest(name: string, reference: Reference, cached?: ManifestRecord): Promise<ManifestRecord | undefined> {
    const key = referenceKey(name, reference);
    // A revision tag never moves: once cached it is kept, like a digest, whatever the upstream says.
    const fixed = reference.kind === 'digest' || isRevision(reference.tag);
    if (cached && (fixed || Date.now() - (tagsCheckedAt.get(key) ?? -Infinity) < tagTtlMs)) {
      return Promise.resolve(cached);
    }
    let pending = manifestFetches.get(key);
    if (!pending) {
      const fetching = cached && reference.kind === 'tag' ? revalidateTag(name, reference.tag, cached) : fetchManifest(name, reference);
      pending = fetching.finally(() => manifestFetches.delete(key));
      manifestFetches.set(key, pending);
    }
    return pending;
  }

  /**
   * Start fetching a whole blob into the store. The fill reads the upstream at its own pace,
   * whoever reads the reply: the returned body streams it to the first client, holding back the
   * last chunk until the digest is verified and the blob is committed, so a bad or cut-off
   * transfer never reaches the client as complete and never reaches the store. A client that
   * falls RELAY_WINDOW behind gets the rest from the store once the fill is committed; one that
   * leaves does not stop the fill. The fill reads no more than the blob's size (the upstream's
   * Content-Length, else its HEAD's: a chunked answer) and the reply states it, so a client
   * always has a length to check (HTTP/1.0 included). `whole` is an upstream 200 already in hand
   * (the answer to a range request), used instead of a new GET.
   */
  async function startFill(name: string, digest: string, whole?: Response): Promise<{ reply?: BlobReply; fill?: Fill; unknown?: true }> {
    const key = `${name}@${digest}`;
    let settle!: (error?: unknown) => void;
    const fill: Fill = {
      done: new Promise<void>((resolve, reject) => (settle = (error) => (error === undefined ? resolve() : reject(error)))),
    };
    fill.done.catch(() => {});
    fills.set(key, fill);
    const finish = (error?: unknown) => {
      if (fills.get(key) === fill) fills.delete(key);
      settle(error);
    };
    let res: Response;
    try {
      res = whole ?? (await request('GET', `${name}/blobs/${digest}`, { accept: () => true }, blobClient));
    } catch (error) {
      finish(error);
      throw error;
    }
    if (BLOB_ABSENT.has(res.status)) {
      await res.body?.cancel().catch(() => {});
      finish(new RegistryError(404, 'BLOB_UNKNOWN', 'blob unknown to upstream'));
      return { unknown: true };
    }
    if (!res.ok || !res.body) {
      await res.body?.cancel().catch(() => {});
      const error = upstreamFailed({ upstream: base, status: res.status, what: `blob ${name}@${digest}` });
      finish(error);
      throw error;
    }
    let sink;
    let size: number;
    try {
      size = await blobSize(`${name}/blobs/${digest}`, res);
      sink = await writer!.createBlob(name, digest, size);
    } catch (error) {
      await res.body.cancel().catch(() => {});
      finish(error);
      throw error;
    }
    /** The first client's stream while it keeps up; undefined once it left or fell behind. */
    let relay: ReadableStreamDefaultController<Uint8Array> | undefined;
    let held: Uint8Array | undefined;
    let relayed = 0;
    let behind!: () => void;
    const fellBehind = new Promise<void>((resolve) => (behind = resolve));
    const reader = res.body.pipeThrough(exactly(size, `blob ${name}@${digest}`)).getReader();
    const pump = async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (!value || value.length === 0) continue;
        await sink.write(value);
        if (!relay) continue;
        if (held) {
          if ((relay.desiredSize ?? 0) <= 0) {
            relay = undefined; // RELAY_WINDOW queued: the client reads the rest from the store
            held = undefined;
            behind();
            continue;
          }
          relay.enqueue(held);
          relayed += held.length;
        }
        held = value;
      }
      await sink.commit().catch((error: unknown) => {
        fill.refused = true; // a digest mismatch (the temp file is discarded)
        if (refusedAt.size >= REFUSED_KEPT) refusedAt.delete(refusedAt.keys().next().value!);
        refusedAt.set(key, Date.now());
        throw error;
      });
    };
    pump().then(
      () => {
        if (held) relay?.enqueue(held);
        relay?.close();
        finish();
      },
      async (error) => {
        options.onError?.(`${name}@${digest}: ${(error as Error)?.message ?? error}; nothing cached`);
        await reader.cancel().catch(() => {});
        await sink.abort().catch(() => {});
        relay?.error(error);
        finish(error);
      },
    );
    let rest: ReadableStreamDefaultReader<Uint8Array> | undefined;
    const body = new ReadableStream<Uint8Array>(
      {
        start: (controller) => void (relay = controller),
        async pull(controller) {
          await fellBehind; // until then the pump enqueues
          try {
            if (!rest) {
              await fill.done;
              const size = (await store.statBlob(name, digest))?.size;
              if (size === undefined) throw new Error(`${name}@${digest} left the store before it was served`);
              const tail = size > relayed ? await store.openBlob(name, digest, { start: relayed, end: size - 1 }) : new Uint8Array(0);
              if (!tail || tail instanceof Uint8Array) {
                if (tail?.length) controller.enqueue(tail);
                return controller.close();
              }
              rest = tail.getReader();
            }
            const { done, value } = await rest.read();
            if (done) controller.close();
            else controller.enqueue(value);
          } catch (error) {
            controller.error(error);
          }
        },
        cancel: (reason) => {
          relay = undefined; // the fill goes on: others may be waiting for it
          held = undefined;
          return rest?.cancel(reason);
        },
      },
      new ByteLengthQueuingStrategy({ highWaterMark: RELAY_WINDOW }),
    );
    return { reply: { status: 200, headers: blobHeaders(digest, { 'Content-Length': String(size) }), body }, fill };
  }

  /** Wait for a fill (its reply unread): the blob is then verified and cached, or this throws. */
  async function completeFill(started: { reply?: BlobReply; fill?: Fill }): Promise<'cached' | undefined> {
    if (!started.fill) return undefined;
    await (started.reply?.body as ReadableStream | undefined)?.cancel().catch(() => {});
    try {
      await started.fill.done;
    } catch (error) {
      throw upstreamFailed({ upstream: base, what: 'blob', error: (error as Error)?.message ?? String(error) });
    }
    return 'cached';
  }

  /**
   * The size of the blob a 200 `res` is sending: its Content-Length, else (a chunked answer) its
   * HEAD's. Either is only the upstream's claim: the fill stops there and checks the digest.
   * RegistryError 502 when the upstream states none.
   */
  async function blobSize(path: string, res: Response): Promise<number> {
    const size = contentLength(res) ?? (await statedSize(path)).size;
    if (size === undefined) fail(502, `${path}: the upstream states no size for it`);
    return size;
  }

  /**
   * The HEAD of the blob at `path`: its status and the size it states. A stated size is kept
   * (bounded), so the many range reads of one lazy pull ask once; it stays only the upstream's
   * claim (the fill and every relayed range are held to it).
   */
  async function statedSize(path: string): Promise<{ status: number; size?: number }> {
    const known = statedSizes.get(path);
    if (known !== undefined) return { status: 200, size: known };
    const head = await request('HEAD', path, { accept: () => true });
    await head.body?.cancel().catch(() => {});
    const size = head.ok ? contentLength(head) : undefined;
    if (size !== undefined) {
      if (statedSizes.size >= REFUSED_KEPT) statedSizes.delete(statedSizes.keys().next().value!);
      statedSizes.set(path, size);
    }
    return { status: head.status, size };
  }

  /**
   * The whole blob at `path` straight from the upstream, not cached (a fill of it is running):
   * checked as it passes (its Content-Length is the upstream's stated size; the last chunk is held
   * until the digest matched, so a wrong or cut body never ends cleanly). Undefined when absent.
   */
  async function passThrough(path: string, digest: string): Promise<BlobReply | undefined> {
    const res = await request('GET', path, { accept: () => true }, blobClient);
    if (BLOB_ABSENT.has(res.status)) {
      await res.body?.cancel().catch(() => {});
      return undefined;
    }
    if (!res.ok || !res.body) {
      await res.body?.cancel().catch(() => {});
      fail(res.status, `blob ${path}`);
    }
    const size = await blobSize(path, res);
    const body = res.body.pipeThrough(exactly(size, `blob ${path}`)).pipeThrough(verifyingStream({ digest, size }, `blob ${path} from ${base}`));
    return { status: 200, headers: blobHeaders(digest, { 'Content-Length': String(size) }), body };
  }

  /**
   * Bytes `range` of the blob at `path` from the upstream, exactly: its 206 must name that range of
   * a `size`-byte blob (Content-Range, and Content-Length when sent), and the body is cut where it
   * runs past or ends short of it. Any other answer is returned as it is, for the caller to decide.
   */
  async function relayRange(path: string, range: ByteRange, size: number): Promise<ReadableStream<Uint8Array> | Response> {
    const res = await request('GET', path, { headers: { Range: `bytes=${range.start}-${range.end}` }, accept: () => true }, blobClient);
    const length = range.end - range.start + 1;
    const stated = contentLength(res);
    if (res.status !== 206 || !res.body || res.headers.get('content-range') !== `bytes ${range.start}-${range.end}/${size}` || (stated !== undefined && stated !== length)) return res;
    return res.body.pipeThrough(exactly(length, `range ${range.start}-${range.end} of ${path}`));
  }

  async function blob(name: string, digest: string, asked: BlobRequest): Promise<BlobReply | 'cached' | undefined> {
    const key = `${name}@${digest}`;
    const path = `${name}/blobs/${digest}`;
    if (asked.head) {
      const res = await request('HEAD', path, { accept: () => true });
      await res.body?.cancel().catch(() => {});
      if (BLOB_ABSENT.has(res.status)) return undefined;
      if (!res.ok) fail(res.status, `blob ${name}@${digest}`);
      const length = res.headers.get('content-length');
      // A HEAD with a Range gets the headers a GET would: the range resolved against the stated size.
      const wanted = asked.range && length && /^\d+$/.test(length) ? parseRange(asked.range, Number(length)) : undefined;
      if (wanted?.kind === 'unsatisfiable') throw rangeInvalid(asked.range!, Number(length));
      if (wanted?.kind === 'ranges' && wanted.ranges.length === 1) {
        const [{ start, end }] = wanted.ranges;
        return { status: 206, headers: unverifiedHeaders(digest, { 'Content-Length': String(end - start + 1), 'Content-Range': `bytes ${start}-${end}/${length}` }), body: null };
      }
      if (wanted?.kind === 'ranges') {
        const multipart = multipartByteranges(wanted.ranges, Number(length));
        return { status: 206, headers: unverifiedHeaders(digest, { 'Content-Length': String(multipart.length), 'Content-Type': multipart.contentType }), body: null };
      }
      return { status: 200, headers: unverifiedHeaders(digest, length ? { 'Content-Length': length } : {}), body: null };
    }
    // A Range in another unit is ignored (RFC 9110 §14.2): the whole blob.
    const range = asked.range && parseRange(asked.range, 1).kind !== 'none' ? asked.range : undefined;
    if (range) {
      // The ranges are resolved against the blob's size as the upstream states it (HEAD; the fill
      // then holds the upstream to it). Less than JOIN_FILL_SHARE of the blob is relayed,
      // unlabelled and exactly as long as asked (eStargz readers check chunk digests themselves),
      // each merged range from a single-range upstream answer that must name exactly that range of
      // that size, several framed here as multipart/byteranges (an upstream's own multipart body
      // is never passed on: its parts could say anything), while the whole blob is cached in the
      // background. More of the blob, or an answer that is not that, joins the one fill and is
      // served verified from the store; a 200 (Range ignored) is that fill.
      const { status, size } = await statedSize(path);
      if (BLOB_ABSENT.has(status)) return undefined;
      if (size === undefined) fail(status >= 200 && status < 300 ? 502 : status, `blob ${name}@${digest}: the upstream states no size for it`);
      const wanted = parseRange(asked.range, size);
      if (wanted.kind === 'unsatisfiable') throw rangeInvalid(asked.range!, size);
      const ranges = wanted.kind === 'ranges' ? wanted.ranges : [];
      const covered = ranges.reduce((sum, r) => sum + r.end - r.start + 1, 0);
      if (ranges.length > 0 && covered < JOIN_FILL_SHARE * size) {
        const first = await relayRange(path, ranges[0], size);
        if (first instanceof Response) {
          if (first.status === 200 && !fills.has(key)) {
            const started = await startFill(name, digest, first);
            return started.unknown ? undefined : completeFill(started);
          }
          await first.body?.cancel().catch(() => {});
          if (BLOB_ABSENT.has(first.status)) return undefined;
        } else {
          if (!fills.has(key) && !recentlyRefused(key)) startFill(name, digest).then(completeFill).catch(() => {});
          const what = `${name}@${digest}`;
          if (ranges.length === 1) {
            const { start, end } = ranges[0];
            return { status: 206, headers: unverifiedHeaders(digest, { 'Content-Length': String(end - start + 1), 'Content-Range': `bytes ${start}-${end}/${size}` }), body: first };
          }
          const multipart = multipartByteranges(ranges, size);
          const pieces: Piece[] = multipart.parts.flatMap(({ head: partHead, range: r }, i) => [
            partHead,
            async () => {
              const body = i === 0 ? first : await relayRange(path, r, size);
              if (body instanceof Response) {
                await body.body?.cancel().catch(() => {});
                throw new Error(`range ${r.start}-${r.end} of ${what}: the upstream answered ${body.status}, not that range`);
              }
              return body;
            },
          ]);
          return { status: 206, headers: unverifiedHeaders(digest, { 'Content-Length': String(multipart.length), 'Content-Type': multipart.contentType }), body: concatBodies([...pieces, multipart.tail]) };
        }
      }
    }
    for (let attempt = 0; attempt < 3; attempt++) {
      if ((attempt > 0 || range) && (await store.statBlob(name, digest))) return 'cached'; // a fill landed meanwhile
      const running = fills.get(key); // then no await until startFill has registered its fill
      if (running) {
        try {
          // A waiter gets the blob or a 502 within the deadline, however long the fill runs.
          let timer: NodeJS.Timeout | undefined;
          const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(upstreamFailed({ upstream: base, what: `blob ${name}@${digest}`, error: `still being fetched after ${deadlineMs / 1000} s; try again later` })), deadlineMs)));
          await Promise.race([running.done, late]).finally(() => clearTimeout(timer));
          return 'cached';
        } catch (error) {
          if (error instanceof RegistryError && error.code === 'BLOB_UNKNOWN') return undefined;
          // Still running past the deadline (a big or slow blob): a whole-blob request streams it
          // from the upstream itself, verified as it passes, rather than wait on (or fail with) it.
          if (fills.get(key) === running && !range) return passThrough(path, digest);
          if (fills.get(key) === running) throw error;
          if (running.refused) throw upstreamFailed({ upstream: base, what: `blob ${name}@${digest}`, error: (error as Error)?.message ?? String(error) });
          continue; // the other fetch was cut: try again ourselves
        }
      }
      const started = await startFill(name, digest);
      if (started.unknown) return undefined;
      return range ? completeFill(started) : started.reply;
    }
    fail(502, `blob ${name}@${digest}`);
  }

  /** Tag lists being fetched, by repository: concurrent asks share one (each list can be 4 MiB). */
  const tagLists = new Map<string, Promise<string[] | undefined>>();

  /**
   * The upstream's tags of `name`, every page (following `Link: <…>; rel="next"` on the upstream's
   * own origin, at most MAX_TAG_PAGES, MAX_TAG_LIST bytes in all), valid tags only, sorted;
   * undefined when it does not know the repository.
   */
  function tags(name: string): Promise<string[] | undefined> {
    let listing = tagLists.get(name);
    if (!listing) {
      listing = listTags(name).finally(() => tagLists.delete(name));
      tagLists.set(name, listing);
    }
    return listing;
  }

  async function listTags(name: string): Promise<string[] | undefined> {
    const found = new Set<string>();
    let next: string | undefined = `${name}/tags/list`;
    let budget = MAX_TAG_LIST;
    for (let page = 0; next; page++) {
      if (page === MAX_TAG_PAGES) fail(502, `tags of ${name}: more than ${MAX_TAG_PAGES} pages`);
      const res = await request('GET', next, { accept: () => true });
      if (ABSENT.has(res.status) && page === 0) {
        await res.body?.cancel().catch(() => {});
        return undefined;
      }
      if (!res.ok) {
        await res.body?.cancel().catch(() => {});
        fail(res.status, `tags of ${name}`);
      }
      let body: { tags?: unknown };
      try {
        const bytes = await readBounded(res, budget, `the tag list of ${name}`);
        budget -= bytes.length;
        body = JSON.parse(bytes.toString('utf8'));
      } catch (error) {
        throw upstreamFailed({ upstream: base, what: `tags of ${name}`, error: (error as Error).message });
      }
      // Names a registry could not hold are dropped (control characters, markup, paths...).
      if (Array.isArray(body?.tags)) for (const t of body.tags) if (typeof t === 'string' && isTag(t)) found.add(t);
      next = nextPage(res.headers.get('link'), name);
    }
    return [...found].sort();
  }

  /** The `rel="next"` path of a tag list page, when it stays on the upstream and on this list. */
  function nextPage(link: string | null, name: string): string | undefined {
    const target = /<([^>]*)>\s*;\s*rel="?next"?/i.exec(link ?? '')?.[1];
    if (!target) return undefined;
    const list = new URL(client.transport.url(`${name}/tags/list`));
    const url = new URL(target, list);
    if (url.origin !== list.origin || url.pathname !== list.pathname) return undefined;
    return `${name}/tags/list${url.search}`;
  }

  /**
   * The upstream's referrers of `digest` through the client (its referrers API, else its
   * referrers tag, read as a verified manifest); undefined when it does not know the repository.
   * The referrers themselves are fetched and checked like any manifest when a client asks for them.
   */
  async function referrers(name: string, digest: string): Promise<ReferrerDescriptor[] | undefined> {
    try {
      return await client.referrers(name, digest);
    } catch (error) {
      const status = (error as RemoteError).status;
      if (status !== undefined && ABSENT.has(status)) return undefined;
      throw upstreamFailed({ upstream: base, what: `referrers of ${name}@${digest}`, error: (error as Error).message });
    }
  }

  return { manifest, blob, tags, referrers };
}
