// Pull-through cache: what the store misses is fetched from an upstream registry, checked
// against its digest while it streams to the client, and committed to the store only then.
// Concurrent misses for one blob or manifest share a single upstream fetch. Cached tags are
// rechecked against the upstream once they are older than the tag TTL (a model's `latest` moves
// when its catalog sha is updated); digests never change, so they are never rechecked.
import { sha256Digest } from '../image/oci.ts';
import { blobHeaders, type BlobReply, type BlobRequest, type PullThrough } from './app.ts';
import { RegistryError, upstreamFailed } from './errors.ts';
import type { Reference } from './names.ts';
import type { ReferrerDescriptor } from './referrers.ts';
import { manifestMediaType, type ManifestRecord, type RegistryStore } from './store.ts';

const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');
const MAX_MANIFEST = 4 * 1024 * 1024;
export const DEFAULT_TAG_TTL_MS = 5 * 60_000;

export interface PullThroughOptions {
  /** Abort an upstream request that sends nothing for this long (default 30 s). */
  timeoutMs?: number;
  /** How long a cached tag is served before the upstream is asked again (default 5 min). */
  tagTtlMs?: number;
  fetch?: typeof fetch;
  /** Told about failed transfers (the client only sees a cut connection or a 502). */
  onError?: (message: string) => void;
}

/** The upstream's answer to a blob or manifest request, before any caching. */
class Upstream {
  private tokens = new Map<string, { token: string; expires: number }>();

  constructor(
    readonly base: string,
    private doFetch: typeof fetch,
    private timeoutMs: number,
  ) {}

  /** A request to the upstream, with the anonymous bearer-token dance when it asks for one. */
  async request(path: string, init: { method?: string; headers?: Record<string, string>; scope: string }): Promise<Response> {
    const headers: Record<string, string> = { ...init.headers };
    const cached = this.tokens.get(init.scope);
    if (cached && cached.expires > Date.now()) headers.Authorization = `Bearer ${cached.token}`;
    let res = await this.send(path, init.method ?? 'GET', headers);
    if (res.status === 401 && !headers.Authorization) {
      const token = await this.token(res.headers.get('www-authenticate'), init.scope);
      if (token) {
        await res.body?.cancel().catch(() => {});
        res = await this.send(path, init.method ?? 'GET', { ...headers, Authorization: `Bearer ${token}` });
      }
    }
    return res;
  }

  private async send(path: string, method: string, headers: Record<string, string>): Promise<Response> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new Error('upstream timed out')), this.timeoutMs);
    try {
      return await this.doFetch(`${this.base}${path}`, { method, headers, signal: controller.signal, redirect: 'follow' });
    } catch (error) {
      throw upstreamFailed({ upstream: this.base, path, error: String((error as Error)?.message ?? error) });
    } finally {
      clearTimeout(timer);
    }
  }

  private async token(challenge: string | null, scope: string): Promise<string | undefined> {
    if (!challenge || !/^bearer\s/i.test(challenge)) return undefined;
    const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1].toLowerCase(), m[2]]));
    if (!params.realm) return undefined;
    const url = new URL(params.realm);
    if (params.service) url.searchParams.set('service', params.service);
    url.searchParams.set('scope', scope);
    try {
      const res = await this.doFetch(url);
      if (!res.ok) return undefined;
      const body = (await res.json()) as { token?: string; access_token?: string; expires_in?: number };
      const token = body.token ?? body.access_token;
      if (!token) return undefined;
      this.tokens.set(scope, { token, expires: Date.now() + Math.max(30, (body.expires_in ?? 60) - 10) * 1000 });
      return token;
    } catch {
      return undefined;
    }
  }
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
  const upstream = new Upstream(upstreamUrl.replace(/\/+$/, ''), options.fetch ?? fetch, options.timeoutMs ?? 30_000);
  const manifestFetches = new Map<string, Promise<ManifestRecord | undefined>>();
  const tagTtlMs = options.tagTtlMs ?? DEFAULT_TAG_TTL_MS;
  /** `name:tag` -> when the upstream was last asked about it. */
  const tagsCheckedAt = new Map<string, number>();
  const fills = new Map<string, Fill>();
  const scope = (name: string) => `repository:${name}:pull`;
  const referenceKey = (name: string, reference: Reference) => `${name}:${reference.kind === 'tag' ? reference.tag : reference.digest}`;

  function fail(status: number, what: string): never {
    throw upstreamFailed({ upstream: upstream.base, status, what });
  }

  async function fetchManifest(name: string, reference: Reference): Promise<ManifestRecord | undefined> {
    const ref = reference.kind === 'tag' ? reference.tag : reference.digest;
    const res = await upstream.request(`/v2/${name}/manifests/${ref}`, { headers: { Accept: MANIFEST_ACCEPT }, scope: scope(name) });
    if (res.status === 404 || res.status === 401 || res.status === 403) {
      await res.body?.cancel().catch(() => {});
      return undefined;
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => {});
      fail(res.status, `manifest ${name}:${ref}`);
    }
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await res.arrayBuffer());
    } catch (error) {
      throw upstreamFailed({ upstream: upstream.base, what: `manifest ${name}:${ref}`, error: String(error) });
    }
    if (bytes.length > MAX_MANIFEST) fail(res.status, `manifest ${name}:${ref} is larger than 4 MiB`);
    const digest = sha256Digest(bytes);
    const claimed = res.headers.get('docker-content-digest');
    if ((reference.kind === 'digest' && digest !== reference.digest) || (claimed && claimed !== digest)) {
      fail(res.status, `manifest ${name}:${ref} does not match its digest`);
    }
    let mediaType = (res.headers.get('content-type') ?? '').split(';')[0].trim();
    try {
      mediaType = manifestMediaType(JSON.parse(Buffer.from(bytes).toString('utf8'))) ?? mediaType;
    } catch {
      fail(res.status, `manifest ${name}:${ref} is not JSON`);
    }
    if (!mediaType) fail(res.status, `manifest ${name}:${ref} has no media type`);
    const record: ManifestRecord = { digest, mediaType, bytes };
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
      const res = await upstream.request(`/v2/${name}/manifests/${tag}`, { method: 'HEAD', headers: { Accept: MANIFEST_ACCEPT }, scope: scope(name) });
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
   * cut-off transfer never reaches the client as complete and never reaches the store.
   */
  async function startFill(name: string, digest: string): Promise<{ reply?: BlobReply; fill?: Fill; unknown?: true }> {
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
      res = await upstream.request(`/v2/${name}/blobs/${digest}`, { scope: scope(name) });
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
      const error = upstreamFailed({ upstream: upstream.base, status: res.status, what: `blob ${name}@${digest}` });
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

  async function blob(name: string, digest: string, request: BlobRequest): Promise<BlobReply | 'cached' | undefined> {
    const key = `${name}@${digest}`;
    if (request.head) {
      const res = await upstream.request(`/v2/${name}/blobs/${digest}`, { method: 'HEAD', scope: scope(name) });
      if (res.status === 404 || res.status === 401 || res.status === 403) return undefined;
      if (!res.ok) fail(res.status, `blob ${name}@${digest}`);
      const length = res.headers.get('content-length');
      return { status: 200, headers: blobHeaders(digest, length ? { 'Content-Length': length } : {}), body: null };
    }
    if (request.range) {
      // A range of a blob not cached yet: pass it through, and cache the whole blob in the background.
      if (!fills.has(key)) {
        startFill(name, digest)
          .then(async ({ reply }) => {
            const body = reply?.body;
            if (body && !(body instanceof Uint8Array)) for await (const _ of body as unknown as AsyncIterable<Uint8Array>);
          })
          .catch(() => {});
      }
      const res = await upstream.request(`/v2/${name}/blobs/${digest}`, { headers: { Range: request.range }, scope: scope(name) });
      if (res.status === 404 || res.status === 401 || res.status === 403) return undefined;
      if (res.status === 416) {
        await res.body?.cancel().catch(() => {});
        throw new RegistryError(416, 'RANGE_INVALID', 'requested range not satisfiable', { range: request.range });
      }
      if (!res.ok) fail(res.status, `blob ${name}@${digest}`);
      const extra: Record<string, string> = {};
      for (const h of ['content-length', 'content-range']) {
        const v = res.headers.get(h);
        if (v) extra[h === 'content-length' ? 'Content-Length' : 'Content-Range'] = v;
      }
      return { status: res.status, headers: blobHeaders(digest, extra), body: res.body };
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
      return started.reply;
    }
    fail(502, `blob ${name}@${digest}`);
  }

  async function tags(name: string): Promise<string[] | undefined> {
    const res = await upstream.request(`/v2/${name}/tags/list`, { scope: scope(name) });
    if (res.status === 404 || res.status === 401 || res.status === 403) return undefined;
    if (!res.ok) fail(res.status, `tags of ${name}`);
    const body = (await res.json().catch(() => ({}))) as { tags?: unknown };
    return Array.isArray(body.tags) ? body.tags.filter((t): t is string => typeof t === 'string').sort() : [];
  }

  /**
   * The upstream's referrers of `digest`: its referrers API, else the referrers tag schema's
   * `sha256-<hex>` index (fetched and cached like any manifest); undefined when it knows none.
   */
  async function referrers(name: string, digest: string): Promise<ReferrerDescriptor[] | undefined> {
    const res = await upstream.request(`/v2/${name}/referrers/${digest}`, { headers: { Accept: MANIFEST_ACCEPT }, scope: scope(name) });
    let index: { manifests?: unknown } | undefined;
    if (res.ok) {
      const bytes = new Uint8Array(await res.arrayBuffer());
      if (bytes.length > MAX_MANIFEST) fail(res.status, `referrers of ${name}@${digest} are larger than 4 MiB`);
      index = JSON.parse(Buffer.from(bytes).toString('utf8')) as { manifests?: unknown };
    } else {
      await res.body?.cancel().catch(() => {});
      const tagged = await fetchManifest(name, { kind: 'tag', tag: digest.replace(':', '-') });
      if (tagged) index = JSON.parse(Buffer.from(tagged.bytes).toString('utf8')) as { manifests?: unknown };
    }
    return Array.isArray(index?.manifests) ? (index.manifests as ReferrerDescriptor[]) : undefined;
  }

  return { manifest, blob, tags, referrers };
}

