// The registry as a Cloudflare Worker over R2 (the public depot.ai): the same Hono app as
// `depot-ai serve`, over R2Store, filled by pull-through from the registry CI pushes to.
//
// Concurrent misses for one blob are fetched once across all Worker instances: a miss is handed
// to the Durable Object named `<name>@<digest>` (BlobFills). There is exactly one such object in
// the world, so every request for that blob meets in the same isolate, where the pull-through's
// in-memory fill map lets the first request fetch and stream while the others wait and are then
// served from R2. Manifests are small and written idempotently, so the Worker fetches them itself.
import { baseHeaders, createApp, errorResponse, type BlobReply, type BlobRequest, type PullThrough } from './app.ts';
import { RegistryError } from './errors.ts';
import { MissCache } from './miss-cache.ts';
import { normalizeName } from './names.ts';
import { blobKey, R2Store, type R2Bucket } from './r2-store.ts';
import { createPullThrough } from './upstream.ts';

interface DurableObjectStub {
  fetch(input: string, init?: RequestInit): Promise<Response>;
}
interface DurableObjectNamespace {
  idFromName(name: string): unknown;
  get(id: unknown): DurableObjectStub;
}

/** The bindings wrangler.toml declares (vars, secrets, the R2 bucket, the Durable Object). */
export interface Env {
  BUCKET: R2Bucket;
  /** Base URL of the registry to pull through from (a var); empty or absent: serve R2 only. */
  UPSTREAM?: string;
  /** Secrets: basic-auth credentials, sent only to the upstream's own origin. */
  UPSTREAM_USER?: string;
  UPSTREAM_PASSWORD?: string;
  /** A var: public URL of the bucket (custom domain or CDN); full blob GETs are redirected there. */
  PUBLIC_BLOB_URL?: string;
  FILLS?: DurableObjectNamespace;
}

/** The vars that must be absolute URLs when set (wrangler.toml's [vars]). */
const URL_SETTINGS = ['UPSTREAM', 'PUBLIC_BLOB_URL'] as const;

/**
 * What is wrong with the Worker's configuration, as one line naming the setting, or undefined.
 * UPSTREAM and PUBLIC_BLOB_URL are empty or absolute http(s) URLs (a value without a scheme would
 * be read as a path: every pull-through would fail, every redirect would point into this
 * registry), with no whitespace or control characters (a pasted newline would break every
 * Location), no user:password@ (sent to every client; UPSTREAM's credentials are the secrets
 * UPSTREAM_USER and UPSTREAM_PASSWORD), no query or fragment (the blob's key would land inside
 * it), and for UPSTREAM no path (the Distribution API is at /v2/ of its origin).
 */
export function configProblem(env: Partial<Record<(typeof URL_SETTINGS)[number], string>>): string | undefined {
  for (const setting of URL_SETTINGS) {
    const value = env[setting];
    if (!value) continue;
    let url: URL | undefined;
    try {
      url = new URL(value);
    } catch {
      // not a URL at all
    }
    if (url?.username || url?.password) {
      return setting === 'UPSTREAM'
        ? 'UPSTREAM must not hold credentials (user:password@): set the secrets UPSTREAM_USER and UPSTREAM_PASSWORD instead'
        : `${setting} must not hold credentials (user:password@): every client would be sent them`;
    }
    // The message reaches clients: a value that may hold a secret is not quoted.
    const not = value.includes('@') ? 'not the value set (not shown: it has an @)' : `not ${JSON.stringify(value)}`;
    if (/[\s\x00-\x1f\x7f]/.test(value)) return `${setting} must have no spaces or control characters (a pasted newline?), ${not}`;
    if (url?.protocol !== 'http:' && url?.protocol !== 'https:') return `${setting} must be an absolute http(s) URL (e.g. https://registry.depot.ai), ${not}`;
    if (/[?#]/.test(value)) return `${setting} must have no query or fragment (? or #), ${not}`;
    if (setting === 'UPSTREAM' && url.pathname !== '/') return `UPSTREAM must be the registry's origin with no path (its API is at /v2/), ${not}`;
  }
  return undefined;
}

/** A URL setting configProblem accepted, normalised: origin and path, with no trailing slash. */
function settingBase(value: string): string {
  const url = new URL(value);
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

/**
 * The pull-through over R2 (registry/upstream.ts, its one entry point). Blob misses go through
 * the BlobFills Durable Object when `viaFills` and the binding is there.
 */
function pullThrough(env: Env, store: R2Store, viaFills: boolean): PullThrough | undefined {
  if (!env.UPSTREAM) return undefined;
  const local = createPullThrough(store, settingBase(env.UPSTREAM), {
    credentials: env.UPSTREAM_USER ? { username: env.UPSTREAM_USER, password: env.UPSTREAM_PASSWORD ?? '' } : undefined,
    onError: (message) => console.error(`pull-through: ${message}`),
  });
  const fills = env.FILLS;
  if (!viaFills || !fills) return local;
  return {
    manifest: local.manifest,
    tags: local.tags,
    referrers: local.referrers,
    async blob(name: string, digest: string, request: BlobRequest): Promise<BlobReply | undefined> {
      const key = `${name}@${digest}`;
      if (misses.has(key)) return undefined;
      const stub = fills.get(fills.idFromName(key));
      const res = await stub.fetch(`https://fills/v2/${name}/blobs/${digest}`, {
        method: request.head ? 'HEAD' : 'GET',
        headers: request.range ? { Range: request.range } : {},
      });
      if (res.status === 404) {
        await res.body?.cancel().catch(() => {});
        misses.add(key);
        return undefined;
      }
      return { status: res.status, headers: Object.fromEntries(res.headers), body: res.body };
    },
  };
}

/**
 * Blob misses the upstream answered 404 (via BlobFills), per isolate: asked again after a minute.
 * A blob pushed upstream in that minute is a 404 here until then; clients learn digests from
 * manifests, which are not cached as misses, so only a client guessing ahead of a push sees it.
 */
const misses = new MissCache(60_000, 10_000);

const BLOB_PATH = /^\/v2\/(.+)\/blobs\/(sha256:[0-9a-f]{64})$/;

/**
 * With PUBLIC_BLOB_URL, a full GET of a blob R2 holds is a 307 to the bucket's public URL (how
 * Docker Hub and GHCR hand out layers; clients follow it). Range and conditional requests are
 * still answered here, so lazy pulls keep their one round trip per chunk.
 */
async function redirectBlob(request: Request, env: Env, store: R2Store): Promise<Response | undefined> {
  if (!env.PUBLIC_BLOB_URL || request.method !== 'GET') return undefined;
  for (const h of ['range', 'if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since']) if (request.headers.has(h)) return undefined;
  const m = BLOB_PATH.exec(new URL(request.url).pathname);
  if (!m) return undefined;
  const name = normalizeName(m[1]);
  if (!name) return undefined; // the app answers NAME_INVALID
  if (!(await store.statBlob(name, m[2]))) return undefined; // a miss goes to the pull-through
  const location = `${settingBase(env.PUBLIC_BLOB_URL)}/${blobKey(name, m[2]).split('/').map(encodeURIComponent).join('/')}`;
  return new Response(null, { status: 307, headers: baseHeaders({ Location: location, 'Docker-Content-Digest': m[2] }) });
}

/** workerd's identity stream that declares its length (Workers runtime API, streams). */
declare class FixedLengthStream extends TransformStream<Uint8Array, Uint8Array> {
  constructor(length: number);
}

/**
 * workerd sends a body it cannot size (a stream made in JavaScript: a multipart/byteranges answer,
 * a blob streamed from the upstream) chunked, dropping the app's Content-Length. Piped through a
 * FixedLengthStream it goes out with that length, as `serve` sends it, and a body that ends short
 * is a cut connection rather than a shorter blob.
 */
function withContentLength(response: Response): Response {
  const length = Number(response.headers.get('content-length') ?? NaN);
  if (!response.body || !Number.isSafeInteger(length)) return response;
  const fixed = new FixedLengthStream(length);
  response.body.pipeTo(fixed.writable).catch(() => {}); // an error reaches the client as a cut body
  return new Response(fixed.readable, response);
}

/** One app per isolate and role (the bindings do not change within an isolate). */
function appFor(env: Env, viaFills: boolean) {
  const store = new R2Store(env.BUCKET);
  const app = createApp({ store, upstream: pullThrough(env, store, viaFills) });
  return { store, app };
}

let worker: ReturnType<typeof appFor> | undefined;
/** The configuration's problem, checked once per isolate (the bindings do not change within one). */
let misconfigured: RegistryError | undefined | null = null;

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    if (misconfigured === null) {
      const problem = configProblem(env);
      misconfigured = problem === undefined ? undefined : new RegistryError(500, 'UNKNOWN', `registry misconfigured: ${problem}`);
      if (problem) console.error(`config: ${problem}`);
    }
    if (misconfigured) return errorResponse(misconfigured, request.method === 'HEAD');
    worker ??= appFor(env, true);
    return (await redirectBlob(request, env, worker.store)) ?? withContentLength(await worker.app.fetch(request));
  },
};

/** The Durable Object that serialises the fills of one blob (see the top of this file). */
export class BlobFills {
  private app: ReturnType<typeof appFor>['app'];

  constructor(_state: unknown, env: Env) {
    this.app = appFor(env, false).app;
  }

  /** With its Content-Length: the Worker in front checks the length of what it relays (withContentLength). */
  async fetch(request: Request): Promise<Response> {
    return withContentLength(await this.app.fetch(request));
  }
}
