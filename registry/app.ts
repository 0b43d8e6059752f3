// The read-only OCI Distribution API (pull side) as a Hono app over a RegistryStore.
// Nothing here is Node-specific: the same app can run on an edge runtime with another store.
import { Hono, type Context } from 'hono';
import {
  blobUnknown,
  digestInvalid,
  errorBody,
  manifestUnknown,
  nameInvalid,
  nameUnknown,
  notFound,
  paginationInvalid,
  preconditionFailed,
  rangeInvalid,
  RegistryError,
  unsupported,
} from './errors.ts';
import { isSha256Digest, normalizeName, parseReference, type Reference } from './names.ts';
import { concatBodies, type Piece } from './pump.ts';
import { dateHeader, ifRangeMatches, preconditions } from './conditional.ts';
import { multipartByteranges, parseRange, singleRangeSpec } from './range.ts';
import type { ReferrerDescriptor } from '../client/referrers.ts';
import { referrersIndex } from './referrers.ts';
import type { BlobBody, BlobStat, ManifestRecord, RegistryStore } from './store.ts';

export const API_VERSION_HEADER = 'Docker-Distribution-API-Version';
export const API_VERSION = 'registry/2.0';
const IMMUTABLE = 'public, max-age=31536000, immutable';
const MUTABLE = 'no-cache';
const INDEX_TYPES = new Set([
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
]);
const MAX_PAGE = 10_000;

/** The pull-through side (registry/upstream.ts): consulted when the store misses, and for cached tags. */
export interface PullThrough {
  /**
   * Fetch a manifest by tag or digest from upstream and cache it; undefined when upstream does not
   * know it. Given the `cached` record of a tag, answer it or, once stale, the tag's current one.
   */
  manifest(name: string, reference: Reference, cached?: ManifestRecord): Promise<ManifestRecord | undefined>;
  /**
   * Serve a blob the store does not hold (streamed, verified, then cached): a Response, 'cached'
   * when another request has just put it in the store, or undefined when upstream does not know it.
   */
  blob(name: string, digest: string, request: BlobRequest): Promise<BlobReply | 'cached' | undefined>;
  tags(name: string): Promise<string[] | undefined>;
  /** The upstream's referrers of a digest (registry/referrers.ts); undefined when it knows none. */
  referrers?(name: string, digest: string): Promise<ReferrerDescriptor[] | undefined>;
}

/** A blob answer before it becomes a Response (so the runtime's stream sender can take it). */
export interface BlobReply {
  status: number;
  headers: Record<string, string>;
  body: BlobBody | null;
}

export interface BlobRequest {
  head: boolean;
  range: string | undefined;
}

/**
 * A runtime's own way to send a blob body (on Node: registry/pump.ts, one chunk at a time);
 * undefined to fall back to a web Response.
 */
export type StreamSender = (c: Context, status: number, headers: Record<string, string>, body: BlobBody) => Response | undefined;

export interface AppOptions {
  store: RegistryStore;
  upstream?: PullThrough;
  sendStream?: StreamSender;
}

type Headers = Record<string, string>;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Headers every registry response carries. nosniff: a browser renders a body only as the
 * Content-Type says (a manifest or blob is never sniffed into HTML).
 */
export function baseHeaders(extra: Headers): Headers {
  return { [API_VERSION_HEADER]: API_VERSION, 'X-Content-Type-Options': 'nosniff', ...extra };
}

export function errorResponse(error: RegistryError, head = false): Response {
  const body = encoder.encode(errorBody(error.code, error.message, error.detail));
  return new Response(head ? null : body, {
    status: error.status,
    headers: baseHeaders({
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': String(body.length),
      ...error.headers,
    }),
  });
}

function json(value: unknown, head: boolean, extra: Headers = {}): Response {
  const body = encoder.encode(JSON.stringify(value));
  return new Response(head ? null : body, {
    status: 200,
    headers: baseHeaders({
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': String(body.length),
      ...extra,
    }),
  });
}

/** The raw path (not percent-decoded, so an encoded slash can never become a separator). */
function rawPath(url: string): string {
  const start = url.indexOf('/', url.indexOf('://') + 3);
  if (start < 0) return '/';
  const q = url.indexOf('?', start);
  const h = url.indexOf('#', start);
  const end = q >= 0 ? q : h >= 0 ? h : url.length;
  return url.slice(start, end);
}

/** Whether a client that sent `accept` takes `mediaType` (no Accept header takes anything). */
function accepts(accept: string | undefined, mediaType: string): boolean {
  if (!accept) return true;
  for (const part of accept.split(',')) {
    const type = part.split(';')[0].trim().toLowerCase();
    if (type === mediaType || type === '*/*' || type === 'application/*') return true;
  }
  return false;
}

/** Headers every content-addressed blob response carries. */
export function blobHeaders(digest: string, extra: Headers = {}): Headers {
  return baseHeaders({
    'Content-Type': 'application/octet-stream',
    'Docker-Content-Digest': digest,
    ETag: `"${digest}"`,
    'Cache-Control': IMMUTABLE,
    'Accept-Ranges': 'bytes',
    ...extra,
  });
}

/** If-Modified-Since dates from this one on are evaluated by the app, not the store (2100-01-01). */
const STORE_DATES_BEFORE = Date.UTC(2100, 0, 1);

/** A stored blob's headers, Last-Modified in whole seconds (`modified`, what validators compare with). */
function storedBlobHeaders(digest: string, stat: BlobStat): { headers: Headers; modified: Date } {
  const modified = new Date(Math.floor(stat.modified.getTime() / 1000) * 1000);
  return { headers: blobHeaders(digest, { 'Last-Modified': modified.toUTCString() }), modified };
}

function parsePageSize(c: Context): number | undefined {
  const n = c.req.query('n');
  if (n === undefined) return undefined;
  if (!/^\d{1,9}$/.test(n)) throw paginationInvalid(n);
  return Math.min(Number(n), MAX_PAGE);
}

/**
 * One page of a sorted list: entries after `last`, at most `n`, and the Link to the next page.
 * `n=0` asks for an empty page and gets no Link: a Link that does not advance `last` would send
 * a Link-following client round forever.
 */
function page(c: Context, all: string[], route: string): { items: string[]; link?: string } {
  const n = parsePageSize(c);
  if (n === 0) return { items: [] };
  const last = c.req.query('last');
  let items = last === undefined ? all : all.filter((t) => t > last);
  if (n === undefined || items.length <= n) return { items };
  items = items.slice(0, n);
  const next = `${route}?n=${n}&last=${encodeURIComponent(items[items.length - 1] ?? '')}`;
  return { items, link: `<${next}>; rel="next"` };
}

export function createApp({ store, upstream, sendStream }: AppOptions): Hono {
  const app = new Hono();

  async function unknownRepoOr(name: string, error: RegistryError): Promise<RegistryError> {
    return (await store.hasRepository(name)) ? error : nameUnknown(name);
  }

  async function loadManifest(name: string, reference: Reference): Promise<ManifestRecord | undefined> {
    const digest = reference.kind === 'tag' ? await store.resolveTag(name, reference.tag) : reference.digest;
    const local = digest ? await store.manifest(name, digest) : undefined;
    if (!upstream || (local && reference.kind === 'digest')) return local;
    return upstream.manifest(name, reference, local);
  }

  async function manifests(c: Context, name: string, ref: string, head: boolean): Promise<Response> {
    const reference = parseReference(ref);
    if (!reference) throw manifestUnknown(name, ref);
    let record = await loadManifest(name, reference);
    if (!record) throw upstream ? manifestUnknown(name, ref) : await unknownRepoOr(name, manifestUnknown(name, ref));
    const accept = c.req.header('accept');
    if (reference.kind === 'tag' && INDEX_TYPES.has(record.mediaType) && !accepts(accept, record.mediaType)) {
      // A client that does not take an index gets the linux/amd64 image (or the first it accepts).
      const index = JSON.parse(decoder.decode(record.bytes)) as {
        manifests?: { digest: string; mediaType: string; platform?: { os?: string; architecture?: string } }[];
      };
      const candidates = (index.manifests ?? []).filter((d) => accepts(accept, d.mediaType));
      const chosen =
        candidates.find((d) => d.platform?.os === 'linux' && d.platform?.architecture === 'amd64') ?? candidates[0];
      const child = chosen && isSha256Digest(chosen.digest) ? await loadManifest(name, { kind: 'digest', digest: chosen.digest }) : undefined;
      if (!child) throw manifestUnknown(name, ref);
      record = child;
    }
    const etag = `"${record.digest}"`;
    const headers = baseHeaders({
      'Content-Type': record.mediaType,
      'Docker-Content-Digest': record.digest,
      ETag: etag,
      'Cache-Control': reference.kind === 'digest' ? IMMUTABLE : MUTABLE,
      Vary: 'Accept',
    });
    const precondition = preconditions((h) => c.req.header(h), etag);
    if (precondition === 412) throw preconditionFailed(etag);
    if (precondition === 304) return new Response(null, { status: 304, headers });
    headers['Content-Length'] = String(record.bytes.length);
    return new Response(head ? null : (record.bytes as BodyInit), { status: 200, headers });
  }

  async function blobs(c: Context, name: string, digest: string, head: boolean): Promise<Response> {
    if (!isSha256Digest(digest)) throw digestInvalid(digest);
    const quick = store.readBlob && !head ? await readAtOnce(c, name, digest) : undefined;
    if (quick) return quick;
    let stat = await store.statBlob(name, digest);
    if (!stat) {
      if (!upstream) throw await unknownRepoOr(name, blobUnknown(name, digest));
      // If-Range on a miss: only the digest's strong entity-tag can match (no Last-Modified yet).
      const ifRange = c.req.header('if-range');
      const range = ifRange === undefined || ifRange.trim() === `"${digest}"` ? c.req.header('range') : undefined;
      const reply = await upstream.blob(name, digest, { head, range });
      if (reply && reply !== 'cached') {
        // The ETag is the digest whether cached or not; a date only when the reply carries the
        // stored blob's (the Worker's fill, answered from R2), none while unverified.
        const lastModified = dateHeader(reply.headers['Last-Modified'] ?? reply.headers['last-modified']);
        const modified = lastModified === undefined ? undefined : new Date(lastModified);
        const precondition = reply.status < 300 ? preconditions((h) => c.req.header(h), `"${digest}"`, modified) : undefined;
        if (!precondition) return send(c, reply.status, reply.headers, head ? null : reply.body);
        if (reply.body && !(reply.body instanceof Uint8Array)) await reply.body.cancel().catch(() => {});
        if (precondition === 412) throw preconditionFailed(`"${digest}"`);
        return new Response(null, { status: 304, headers: blobHeaders(digest, modified ? { 'Last-Modified': modified.toUTCString() } : {}) });
      }
      if (reply === 'cached') stat = await store.statBlob(name, digest);
      if (!stat) throw blobUnknown(name, digest);
    }
    return serveBlob(c, name, digest, stat, head);
  }

  async function serveBlob(c: Context, name: string, digest: string, stat: BlobStat, head: boolean): Promise<Response> {
    const etag = `"${digest}"`;
    const { headers, modified } = storedBlobHeaders(digest, stat);
    const precondition = preconditions((h) => c.req.header(h), etag, modified);
    if (precondition === 412) throw preconditionFailed(etag);
    if (precondition === 304) return new Response(null, { status: 304, headers });
    let rangeHeader = c.req.header('range');
    const ifRange = c.req.header('if-range');
    if (rangeHeader && ifRange !== undefined && !ifRangeMatches(ifRange, etag, modified)) rangeHeader = undefined;
    const range = parseRange(rangeHeader, stat.size);
    if (range.kind === 'unsatisfiable') throw rangeInvalid(rangeHeader ?? '', stat.size);
    let status = 200;
    let body: BlobBody | null = null;
    if (range.kind === 'ranges' && range.ranges.length > 1) {
      const multipart = multipartByteranges(range.ranges, stat.size);
      headers['Content-Type'] = multipart.contentType;
      headers['Content-Length'] = String(multipart.length);
      const pieces = multipart.parts.flatMap(({ head, range }): Piece[] => [head, () => store.openBlob(name, digest, range)]);
      return send(c, 206, headers, head ? null : concatBodies([...pieces, multipart.tail]));
    }
    if (range.kind === 'ranges') {
      const [only] = range.ranges;
      status = 206;
      headers['Content-Range'] = `bytes ${only.start}-${only.end}/${stat.size}`;
      headers['Content-Length'] = String(only.end - only.start + 1);
      if (!head) body = (await store.openBlob(name, digest, only)) ?? null;
    } else {
      headers['Content-Length'] = String(stat.size);
      if (!head) body = (await store.openBlob(name, digest)) ?? null;
    }
    if (!head && body === null) throw blobUnknown(name, digest); // removed since the stat
    return send(c, status, headers, body);
  }

  /**
   * A GET that one store request answers (RegistryStore.readBlob): at most one range, and of the
   * preconditions only If-Modified-Since, passed to the store when its date is one R2 takes
   * (from 1970 to 2100; workerd refuses dates past 2189 and misreads those before 1970).
   * Undefined: answer by the stat (absent, past the end, or what only the stat can settle).
   */
  async function readAtOnce(c: Context, name: string, digest: string): Promise<Response | undefined> {
    if (['if-match', 'if-unmodified-since', 'if-none-match', 'if-range'].some((h) => c.req.header(h) !== undefined)) return undefined;
    const range = singleRangeSpec(c.req.header('range'));
    if (range === undefined) return undefined;
    const since = dateHeader(c.req.header('if-modified-since')); // not an HTTP-date: ignored (RFC 9110 §13.1.3)
    if (since !== undefined && !(since >= 0 && since < STORE_DATES_BEFORE)) return undefined;
    const read = await store.readBlob!(name, digest, { range: range ?? undefined, modifiedSince: since === undefined ? undefined : new Date(since) });
    if (!read) return undefined;
    const { headers } = storedBlobHeaders(digest, read.stat);
    if (read.body === null) return new Response(null, { status: 304, headers });
    if (!read.range) return send(c, 200, { ...headers, 'Content-Length': String(read.stat.size) }, read.body);
    const { start, end } = read.range;
    return send(c, 206, { ...headers, 'Content-Range': `bytes ${start}-${end}/${read.stat.size}`, 'Content-Length': String(end - start + 1) }, read.body);
  }

  function send(c: Context, status: number, headers: Record<string, string>, body: BlobBody | null): Response {
    if (body && sendStream) {
      const sent = sendStream(c, status, headers, body);
      if (sent) return sent;
    }
    return new Response(body as BodyInit | null, { status, headers });
  }

  async function tagsList(c: Context, name: string, head: boolean): Promise<Response> {
    const cached = (await store.hasRepository(name)) ? await store.tags(name) : undefined;
    // Through a pull-through, the upstream's tags and those cached (the upstream's list is the
    // news: a tag pushed there since); the cache alone while the upstream fails.
    const upstreamTags = upstream ? await upstream.tags(name).catch((error: unknown) => (cached ? undefined : Promise.reject(error))) : undefined;
    const tags = upstreamTags ? [...new Set([...upstreamTags, ...(cached ?? [])])].sort() : cached;
    if (!tags) throw nameUnknown(name);
    const { items, link } = page(c, tags, `/v2/${name}/tags/list`);
    return json({ name, tags: items }, head, link ? { Link: link } : {});
  }

  async function catalog(c: Context, head: boolean): Promise<Response> {
    const { items, link } = page(c, await store.repositories(), '/v2/_catalog');
    return json({ repositories: items }, head, link ? { Link: link } : {});
  }

  async function referrers(c: Context, name: string, digest: string, head: boolean): Promise<Response> {
    if (!isSha256Digest(digest)) throw digestInvalid(digest);
    const local = (await store.hasRepository(name)) ? ((await store.referrers?.(name, digest)) ?? []) : undefined;
    if (!local && !upstream) throw nameUnknown(name);
    // With the upstream down, what the store holds is still listed (as every cached read is served).
    const remote = await upstream?.referrers?.(name, digest).catch((error: unknown) => {
      if (local && local.length > 0) return undefined;
      throw error;
    });
    const all = [...(local ?? []), ...(remote ?? []).filter((r) => !local?.some((l) => l.digest === r.digest))];
    const { body, headers } = referrersIndex(all, c.req.query('artifactType'));
    return new Response(head ? null : body, { status: 200, headers: baseHeaders({ ...headers, 'Content-Length': String(encoder.encode(body).length), 'Cache-Control': MUTABLE }) });
  }

  const REFERRERS = /^\/v2\/(.+)\/referrers\/([^/]+)$/;
  const ROUTE = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/;
  const TAGS = /^\/v2\/(.+)\/tags\/list$/;

  app.all('*', async (c) => {
    const method = c.req.method;
    const path = rawPath(c.req.url);
    if (path === '/v2/' || path === '/v2') {
      if (method !== 'GET' && method !== 'HEAD') throw unsupported(method);
      return json({}, method === 'HEAD');
    }
    if (!path.startsWith('/v2/')) throw notFound(path);
    if (method !== 'GET' && method !== 'HEAD') throw unsupported(method);
    const head = method === 'HEAD';
    if (path === '/v2/_catalog') return catalog(c, head);
    let m = ROUTE.exec(path);
    if (m) {
      const name = normalizeName(m[1]);
      if (!name) throw nameInvalid(m[1]);
      return m[2] === 'manifests' ? manifests(c, name, m[3], head) : blobs(c, name, m[3], head);
    }
    m = REFERRERS.exec(path);
    if (m) {
      const name = normalizeName(m[1]);
      if (!name) throw nameInvalid(m[1]);
      return referrers(c, name, m[2], head);
    }
    m = TAGS.exec(path);
    if (m) {
      const name = normalizeName(m[1]);
      if (!name) throw nameInvalid(m[1]);
      return tagsList(c, name, head);
    }
    throw notFound(path);
  });

  app.onError((error, c) => {
    if (error instanceof RegistryError) return errorResponse(error, c.req.method === 'HEAD');
    console.error(`registry: ${c.req.method} ${rawPath(c.req.url)}: ${(error as Error)?.stack ?? error}`);
    return errorResponse(new RegistryError(500, 'UNKNOWN', 'internal error'), c.req.method === 'HEAD');
  });

  return app;
}
