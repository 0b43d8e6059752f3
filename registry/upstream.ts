// Pull-through cache: what the store misses is fetched from an upstream registry, checked
// against its digest while it streams to the client, and committed to the store only then.
// Concurrent misses for one blob or manifest share a single upstream fetch. Cached tags are
// rechecked against the upstream once they are older than the tag TTL (a model's `latest` moves
// when its catalog sha is updated); digests never change, so they are never rechecked.
import { readBounded } from '../client/body.ts';
import type { Credentials } from '../client/auth.ts';
import { MANIFEST_ACCEPT, pullScope, RegistryClient, type RemoteError } from '../client/remote.ts';
import { blobHeaders, type BlobReply, type BlobRequest, type PullThrough } from './app.ts';
import { RegistryError, upstreamFailed } from './errors.ts';
import type { Reference } from './names.ts';
import { manifestMediaType, type ManifestRecord, type RegistryStore } from './store.ts';

/** The largest tag list read from the upstream. */
const MAX_TAG_LIST = 4 * 1024 * 1024;
export const DEFAULT_TAG_TTL_MS = 5 * 60_000;

export interface PullThroughOptions {
  /** Fail an upstream request that sends nothing (headers or body bytes) for this long (default 30 s, DEPOT_IDLE_TIMEOUT_MS). */
  timeoutMs?: number;
  /** How long a cached tag is served before the upstream is asked again (default 5 min). */
  tagTtlMs?: number;
  /** Told about failed transfers (the client only sees a cut connection or a 502). */
  onError?: (message: string) => void;
  /** Basic credentials for the upstream; the client sends them to its origin (and token realm) only. */
  credentials?: Credentials;
}

/** Statuses meaning "the upstream does not have it (for us)". */
const ABSENT = new Set([401, 403, 404]);

/**
 * Headers for blob bytes relayed from the upstream before they are verified: no ETag and not
 * cacheable, so no cache or client keeps them as the content of `digest`.
 */
function unverifiedHeaders(digest: string, extra: Record<string, string>): Record<string, string> {
  const { ETag: _etag, ...headers } = blobHeaders(digest, extra);
  return { ...headers, 'Cache-Control': 'no-store' };
}

/**
 * Whether the 206 `response` answers exactly the single range `asked` (RFC 9110 §14.1.2 forms
 * `a-b`, `a-`, `-n`), or is a multipart/byteranges answer to several ranges.
 */
function answersRange(asked: string, response: Response): boolean {
  const specs = asked.replace(/^bytes=/i, '').split(',').map((r) => r.trim());
  if (specs.length > 1) return /^multipart\/byteranges\b/i.test(response.headers.get('content-type') ?? '');
  const got = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(response.headers.get('content-range') ?? '');
  const want = /^(\d*)-(\d*)$/.exec(specs[0]);
  if (!got || !want || (!want[1] && !want[2])) return false;
  const [start, end, total] = got.slice(1).map(Number);
  const expected = want[1] ? [Number(want[1]), want[2] ? Math.min(Number(want[2]), total - 1) : total - 1] : [Math.max(0, total - Number(want[2])), total - 1];
  const length = response.headers.get('content-length');
  return start === expected[0] && end === expected[1] && (length === null || Number(length) === end - start + 1);
}

/** A fetch into the store that others can wait for. */
interface Fill {
  done: Promise<void>;
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
  const base = upstreamUrl.replace(/\/+$/, '');
  const client = new RegistryClient(parsed.host, { insecure: parsed.protocol === 'http:', idleTimeoutMs: options.timeoutMs, credentials: options.credentials });
  const manifestFetches = new Map<string, Promise<ManifestRecord | undefined>>();
  const tagTtlMs = options.tagTtlMs ?? DEFAULT_TAG_TTL_MS;
  /** `name:tag` -> when the upstream was last asked about it. */
  const tagsCheckedAt = new Map<string, number>();
  const fills = new Map<string, Fill>();
  /** A request to the upstream; RegistryError 502 when it cannot be reached or fails. */
  async function request(method: string, path: string, options: { headers?: Record<string, string>; accept: (status: number) => boolean }): Promise<Response> {
    const name = path.replace(/\/(manifests|blobs|tags)\/.*$/, '');
    try {
      return await client.transport.send(method, path, { ...options, scope: pullScope(name) });
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
    if (cached && (reference.kind === 'digest' || Date.now() - (tagsCheckedAt.get(key) ?? -Infinity) < tagTtlMs)) {
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
   * Start fetching a whole blob into the store. The returned body streams it to the first client,
   * holding back the last chunk until the digest is verified and the blob is committed, so a bad or
   * cut-off transfer never reaches the client as complete and never reaches the store. `whole` is
   * an upstream 200 already in hand (the answer to a range request), used instead of a new GET.
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
      res = whole ?? (await request('GET', `${name}/blobs/${digest}`, { accept: () => true }));
    } catch (error) {
      finish(error);
      throw error;
    }
    if (res.status === 404 || res.status === 401 || res.status === 403) {
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
    try {
      sink = await writer!.createBlob(name, digest);
    } catch (error) {
      await res.body.cancel().catch(() => {});
      finish(error);
      throw error;
    }
    const reader = res.body.getReader();
    let held: Uint8Array | undefined;
    let ended = false;
    const abort = async (error: unknown) => {
      if (ended) return;
      ended = true;
      options.onError?.(`${name}@${digest}: ${(error as Error)?.message ?? error}; nothing cached`);
      await reader.cancel().catch(() => {});
      await sink.abort().catch(() => {});
      finish(error);
    };
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          for (;;) {
            const { done, value } = await reader.read();
            if (done) {
              await sink.commit(); // throws (and discards the temp file) on a digest mismatch
              ended = true;
              if (held) controller.enqueue(held);
              controller.close();
              finish();
              return;
            }
            if (!value || value.length === 0) continue;
            await sink.write(value);
            const previous = held;
            held = value;
            if (previous) {
              controller.enqueue(previous);
              return;
            }
          }
        } catch (error) {
          await abort(error);
          controller.error(error);
        }
      },
      async cancel(reason) {
        await abort(reason ?? new Error('client went away'));
      },
    });
    const headers = blobHeaders(digest);
    const length = res.headers.get('content-length');
    if (length && /^\d+$/.test(length)) headers['Content-Length'] = length;
    return { reply: { status: 200, headers, body }, fill };
  }

  /** Drain a fill's reply to its end: the blob is then verified and cached, or this throws. */
  async function completeFill(started: { reply?: BlobReply }): Promise<'cached' | undefined> {
    const body = started.reply?.body;
    if (!body) return undefined;
    try {
      if (!(body instanceof Uint8Array)) for await (const _ of body as unknown as AsyncIterable<Uint8Array>);
    } catch (error) {
      throw upstreamFailed({ upstream: base, what: 'blob', error: (error as Error)?.message ?? String(error) });
    }
    return 'cached';
  }

  async function blob(name: string, digest: string, asked: BlobRequest): Promise<BlobReply | 'cached' | undefined> {
    const key = `${name}@${digest}`;
    const path = `${name}/blobs/${digest}`;
    if (asked.head) {
      const res = await request('HEAD', path, { accept: () => true });
      await res.body?.cancel().catch(() => {});
      if (ABSENT.has(res.status)) return undefined;
      if (!res.ok) fail(res.status, `blob ${name}@${digest}`);
      const length = res.headers.get('content-length');
      return { status: 200, headers: unverifiedHeaders(digest, length ? { 'Content-Length': length } : {}), body: null };
    }
    if (asked.range) {
      // A 206 that answers exactly what was asked is relayed unlabelled (eStargz readers check
      // chunk digests themselves) while the whole blob is cached in the background; anything
      // else is the whole blob or a wrong answer: verify and cache it, then serve from the cache.
      const res = await request('GET', path, { headers: { Range: asked.range }, accept: () => true });
      if (ABSENT.has(res.status)) {
        await res.body?.cancel().catch(() => {});
        return undefined;
      }
      if (res.status === 416) {
        await res.body?.cancel().catch(() => {});
        throw new RegistryError(416, 'RANGE_INVALID', 'requested range not satisfiable', { range: asked.range });
      }
      if (res.status === 206 && res.body && answersRange(asked.range, res)) {
        if (!fills.has(key)) startFill(name, digest).then(completeFill).catch(() => {});
        const extra: Record<string, string> = {};
        for (const [from, to] of [['content-length', 'Content-Length'], ['content-range', 'Content-Range'], ['content-type', 'Content-Type']]) {
          const value = res.headers.get(from);
          if (value) extra[to] = value;
        }
        return { status: 206, headers: unverifiedHeaders(digest, extra), body: res.body };
      }
      if (res.status === 200 && !fills.has(key)) {
        const started = await startFill(name, digest, res);
        return started.unknown ? undefined : completeFill(started);
      }
      await res.body?.cancel().catch(() => {});
      if (res.status !== 200 && res.status !== 206) fail(res.status, `blob ${name}@${digest}`);
    }
    for (let attempt = 0; attempt < 3; attempt++) {
      const running = fills.get(key);
      if (running) {
        try {
          await running.done;
          return 'cached';
        } catch (error) {
          if (error instanceof RegistryError && error.code === 'BLOB_UNKNOWN') return undefined;
          continue; // the other fetch failed (or its client left): try again ourselves
        }
      }
      const started = await startFill(name, digest);
      if (started.unknown) return undefined;
      return asked.range ? completeFill(started) : started.reply;
    }
    fail(502, `blob ${name}@${digest}`);
  }

  async function tags(name: string): Promise<string[] | undefined> {
    const res = await request('GET', `${name}/tags/list`, { accept: () => true });
    if (ABSENT.has(res.status)) {
      await res.body?.cancel().catch(() => {});
      return undefined;
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => {});
      fail(res.status, `tags of ${name}`);
    }
    let body: { tags?: unknown };
    try {
      body = JSON.parse((await readBounded(res, MAX_TAG_LIST, `the tag list of ${name}`)).toString('utf8'));
    } catch (error) {
      throw upstreamFailed({ upstream: base, what: `tags of ${name}`, error: (error as Error).message });
    }
    return Array.isArray(body?.tags) ? body.tags.filter((t): t is string => typeof t === 'string').sort() : [];
  }

  return { manifest, blob, tags };
}
