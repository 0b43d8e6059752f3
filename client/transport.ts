// The one way the client speaks HTTP to a registry (modelled on go-containerregistry's transport):
// credentials only to the registry's own origin (and, in auth.ts, to the token realm its
// challenge names), redirects followed by hand so a hop to another origin loses them, an idle
// timeout that covers the body as well as the headers, an optional deadline for the whole request
// (retries, redirects, auth and body), bounded error
// bodies, and retries with backoff for idempotent requests.
import { AuthError, Authenticator, type Credentials } from './auth.ts';
import { readBounded } from './body.ts';
import { RemoteError } from './errors.ts';
import { isTransientNetworkError, withRetries } from './retry.ts';

export const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
const MAX_REDIRECTS = 5;
const MAX_ERROR_BODY = 64 * 1024;

export interface TransportOptions {
  /** Plain HTTP instead of HTTPS. */
  insecure?: boolean;
  credentials?: Credentials;
  /** Fail a request when the peer sends nothing (headers or body bytes) for this long (default 30 s). */
  idleTimeoutMs?: number;
  /** Attempts for GET and HEAD, the first included (default 3); other methods are tried once. */
  attempts?: number;
  /**
   * One deadline per `send`, from its call until the response body's last byte: every retry and
   * its backoff, redirect hop, auth round trip (token fetch, retried request) and the body count
   * against it, however steadily the peer trickles. Past it the request fails with a RemoteError
   * (not retried). Default: no limit.
   */
  deadlineMs?: number;
}

export interface SendOptions {
  headers?: Record<string, string>;
  /** Made afresh for each attempt and redirect hop (a stream cannot be sent twice). */
  body?: () => BodyInit;
  /** Statuses that are answers, not errors (default: any 2xx). */
  accept?: (status: number) => boolean;
  /** The token scope this request needs, e.g. `repository:org/model:pull` (Distribution token spec). */
  scope?: string;
  /** Aborts the request, its body being sent or read included, with the signal's reason (not retried). */
  signal?: AbortSignal;
}

export class Transport {
  /** `http(s)://host[:port]`: the only origin the registry's credentials are sent to. */
  readonly origin: string;
  /** Bytes of response bodies read so far (what a lazy pull costs). */
  bytesFetched = 0;
  private readonly auth: Authenticator;
  private readonly idleTimeoutMs: number;

  constructor(
    readonly registry: string,
    private readonly options: TransportOptions = {},
  ) {
    this.origin = new URL(`${options.insecure ? 'http' : 'https'}://${registry}`).origin;
    this.auth = new Authenticator(registry, options.credentials);
    this.idleTimeoutMs = options.idleTimeoutMs ?? (Number(process.env.DEPOT_IDLE_TIMEOUT_MS) || DEFAULT_IDLE_TIMEOUT_MS);
  }

  /** The absolute URL of `/v2/<path>`, or `path` resolved against the registry when it is a URL (an upload Location). */
  url(path: string): string {
    return new URL(/^https?:\/\//i.test(path) ? path : `/v2/${path}`, this.origin).href;
  }

  /**
   * One request to `/v2/<path>` (or an absolute URL), answering auth challenges, following
   * redirects, retrying GET/HEAD on network trouble, 429 and 5xx. Resolves with a response whose
   * status `accept` takes and whose body stalls no longer than the idle timeout; otherwise throws
   * RemoteError with one clear line (the registry's OCI error code and message when it sent one).
   */
  async send(method: string, path: string, options: SendOptions = {}): Promise<Response> {
    const idempotent = method === 'GET' || method === 'HEAD';
    const scope = options.scope ?? '';
    const url = this.url(path);
    const until = this.options.deadlineMs ? Date.now() + this.options.deadlineMs : undefined;
    const once = async () => {
      options.signal?.throwIfAborted();
      let { response, origin } = await this.follow(method, url, this.origin, this.auth.authorization(scope), options, until);
      // Only the registry's own origin may start the credential flow: a 401 from an upload
      // Location or redirect target elsewhere is an answer like any other, and fails.
      if (response.status === 401 && origin === this.origin && (await this.answer(response, scope, until))) {
        ({ response, origin } = await this.follow(method, url, this.origin, this.auth.authorization(scope), options, until));
      }
      if (!(options.accept ?? ((status) => status >= 200 && status < 300))(response.status)) throw await statusError(method, url, response, origin === this.origin ? undefined : origin);
      return response;
    };
    return withRetries(once, { attempts: idempotent ? (this.options.attempts ?? 3) : 1, retryable: isRetryable });
  }

  private async answer(challenge: Response, scope: string, until: number | undefined): Promise<boolean> {
    try {
      return await this.auth.answer(challenge, scope, async (url, authorization) => (await this.follow('GET', url.href, url.origin, authorization, {}, until)).response);
    } catch (error) {
      throw error instanceof AuthError ? new RemoteError(error.message) : error;
    }
  }

  /**
   * Fetch `url`, following up to 5 redirects by hand; `authorization` goes to `trusted` (an
   * origin) only; every hop within the request's deadline `until` (ms since the epoch). Returns
   * the last response and the origin that sent it.
   */
  private async follow(method: string, url: string, trusted: string, authorization: string | undefined, options: SendOptions, until: number | undefined): Promise<{ response: Response; origin: string }> {
    for (let hop = 0; ; hop++) {
      const target = new URL(url);
      // identity: fetch would inflate a gzip body with no bound, and a blob's bytes are its digest's.
      const headers: Record<string, string> = { 'Accept-Encoding': 'identity', ...options.headers };
      if (authorization && target.origin === trusted) headers.Authorization = authorization;
      const body = options.body?.();
      const response = await this.fetchOnce(target, { method, headers, body, ...(body ? { duplex: 'half' } : {}) } as RequestInit, until, options.signal);
      const location = response.headers.get('location');
      if (![301, 302, 303, 307, 308].includes(response.status) || !location || (options.body && response.status < 307)) return { response, origin: target.origin };
      await response.body?.cancel().catch(() => {});
      if (hop >= MAX_REDIRECTS) throw new RemoteError(`${method} ${url}: more than ${MAX_REDIRECTS} redirects`);
      url = new URL(location, target).href;
      if (!/^https?:$/.test(new URL(url).protocol)) throw new RemoteError(`${method} ${target.href}: redirected to ${url}, which is not http(s)`);
    }
  }

  /**
   * One fetch whose headers and every body read must come within the idle timeout, and its whole
   * body by `until`; `signal` aborts it until its body ends. Once the headers are in, the request
   * body's progress no longer re-arms the idle timer: a peer that answers early (a 413) and never
   * reads the rest would otherwise keep a timer armed, and the process alive, for the idle timeout.
   */
  private async fetchOnce(url: URL, init: RequestInit, until: number | undefined, signal?: AbortSignal): Promise<Response> {
    signal?.throwIfAborted();
    const controller = new AbortController();
    const interrupt = () => controller.abort(signal!.reason);
    signal?.addEventListener('abort', interrupt, { once: true });
    const lateError = () => new RemoteError(`${init.method} ${url.href}: ${this.registry} did not finish within ${this.options.deadlineMs! / 1000} s (retries, redirects and auth included)`);
    if (until !== undefined && Date.now() >= until) throw lateError();
    const stalled = () => controller.abort(new RemoteError(`${init.method} ${url.href}: ${this.registry} sent nothing for ${this.idleTimeoutMs / 1000} s`));
    let timer = setTimeout(stalled, this.idleTimeoutMs);
    const lateTimer = until !== undefined ? setTimeout(() => controller.abort(lateError()), until - Date.now()) : undefined;
    const end = () => (clearTimeout(lateTimer), signal?.removeEventListener('abort', interrupt));
    let answered = false;
    const touch = () => {
      if (answered) return;
      clearTimeout(timer);
      timer = setTimeout(stalled, this.idleTimeoutMs);
    };
    let response: Response;
    try {
      response = await fetch(url, { ...init, ...sentWithProgress(init, touch), redirect: 'manual', signal: controller.signal });
    } catch (error) {
      end();
      throw controller.signal.aborted ? controller.signal.reason : this.unreachable(error);
    } finally {
      answered = true;
      clearTimeout(timer);
    }
    if (!response.body) {
      end();
      return response;
    }
    const encoding = response.headers.get('content-encoding');
    if (encoding && encoding.trim().toLowerCase() !== 'identity') {
      end();
      await response.body.cancel().catch(() => {});
      throw new RemoteError(`${init.method} ${url.href}: ${this.registry} answered with Content-Encoding ${JSON.stringify(encoding.slice(0, 40))} although identity was asked for`);
    }
    const reader = response.body.getReader();
    const body = new ReadableStream<Uint8Array>({
      pull: async (stream) => {
        timer = setTimeout(stalled, this.idleTimeoutMs);
        try {
          const { done, value } = await reader.read();
          if (done) {
            end();
            stream.close();
          } else {
            this.bytesFetched += value.length;
            stream.enqueue(value);
          }
        } catch (error) {
          end();
          stream.error(controller.signal.aborted ? controller.signal.reason : this.unreachable(error));
        } finally {
          clearTimeout(timer);
        }
      },
      cancel: (reason) => (end(), reader.cancel(reason)),
    });
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  }

  private unreachable(error: unknown): RemoteError {
    const cause = (error as Error & { cause?: Error & { code?: string } }).cause;
    const hint = !this.options.insecure && /EPROTO|wrong version number|ssl/i.test(`${cause?.code} ${cause?.message}`) ? ' (plain HTTP? use --insecure)' : '';
    return new RemoteError(`cannot reach ${this.registry}: ${cause?.message ?? (error as Error).message}${hint}`, { cause: error });
  }
}

/**
 * A request body of more than 1 MiB as a stream of 256 KiB slices that calls `touch` as each is
 * taken, so a slow but moving upload is not mistaken for a stalled peer (Content-Length kept).
 */
function sentWithProgress(init: RequestInit, touch: () => void): Partial<RequestInit> {
  const body = init.body;
  if (body instanceof ReadableStream) {
    return { body: body.pipeThrough(new TransformStream({ transform: (chunk, controller) => (touch(), controller.enqueue(chunk)) })) };
  }
  if (!(body instanceof Uint8Array) || body.length <= 1 << 20) return {};
  let offset = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      touch();
      if (offset >= body.length) return controller.close();
      controller.enqueue(body.subarray(offset, (offset += 256 * 1024)));
    },
  });
  return { body: stream, headers: { 'Content-Length': String(body.length), ...(init.headers as Record<string, string>) } };
}

/**
 * The registry's refusal as one line: status, and its OCI error code and message when it sent
 * them; `foreign` names the other origin that answered (a 401 there gets no credentials).
 */
async function statusError(method: string, url: string, response: Response, foreign?: string): Promise<RemoteError> {
  let code: string | undefined;
  let message: string | undefined;
  try {
    const body = JSON.parse((await readBounded(response, MAX_ERROR_BODY, 'the error body')).toString('utf8')) as { errors?: Array<{ code?: unknown; message?: unknown }> };
    const first = body.errors?.[0];
    if (typeof first?.code === 'string') code = first.code;
    if (typeof first?.message === 'string') message = first.message;
  } catch {
    await response.body?.cancel().catch(() => {});
  }
  const what = response.status === 401 && foreign ? `${foreign}, not the registry, asked for credentials (none sent)` : response.status === 401 ? 'authentication failed' : response.status === 403 ? 'access denied' : `${response.status}`;
  return new RemoteError(`${method} ${url}: ${what}${code ? ` ${code}` : ''}${message ? `: ${message}` : ''}`, { status: response.status });
}

/** 5xx, 429 and reset connections are worth another try; refused connections and other 4xx are not. */
export function isRetryable(error: unknown): boolean {
  if (error instanceof RemoteError && error.status !== undefined) return error.status >= 500 || error.status === 429;
  return isTransientNetworkError(error) && !/ECONNREFUSED|ENOTFOUND/.test(`${(error as Error).message} ${((error as Error).cause as Error | undefined)?.message}`);
}
