// `depot-ai serve`: the registry app on Node's HTTP server, with a request log and graceful shutdown.
import { getRequestListener, RequestError } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { createServer, ServerResponse, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { Server, type AddressInfo, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { DEFAULT_STORE } from '../image/layout.ts';
import { baseHeaders, createApp, type StreamSender } from './app.ts';
import { errorBody, type ErrorCode } from './errors.ts';
import { LayoutStore } from './fs-store.ts';
import { createRequestLog, formatRequest, type LogSink } from './log.ts';
import { pumpBody } from './pump.ts';
import type { RegistryStore } from './store.ts';
import { createPullThrough, type PullThroughOptions } from './upstream.ts';

export interface RegistryOptions {
  /** A store folder (default `.depot/store`) or any RegistryStore. */
  store?: string | RegistryStore;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 5000; 0 picks a free port. */
  port?: number;
  /** Base URL of a registry to pull through from on a miss (`http://host:port`). */
  upstream?: string;
  /** With `upstream`: how long a cached tag is served before the upstream is asked again. */
  tagTtlMs?: number;
  /** With `upstream`: its credentials, sent to its origin only; and the deadlines of PullThroughOptions. */
  upstreamOptions?: Pick<PullThroughOptions, 'credentials' | 'deadlineMs' | 'fillDeadlineMs'>;
  /** Where request lines go: a function, false for none, or (default) stdout in batches. */
  log?: LogSink | false;
  /** Stop gracefully on SIGINT/SIGTERM (default false; the CLI turns it on). */
  handleSignals?: boolean;
  /** How long close() waits for requests in flight before cutting them off (default 10 s). */
  shutdownTimeoutMs?: number;
  /**
   * A connection on which nothing moves (no request bytes arrive, the client accepts no response
   * bytes) is closed at most this long after the last movement, never before half of it (default
   * 60 s, or DEPOT_SERVE_IDLE_TIMEOUT_MS): a client that asks for a blob and never reads it gives
   * its memory back.
   */
  idleTimeoutMs?: number;
}

/** Limits on what a client may make the server hold or wait for (RFC 9110 §15.5.9 408 on expiry). */
const HEADERS_TIMEOUT_MS = 20_000;
const REQUEST_TIMEOUT_MS = 30_000;
const KEEP_ALIVE_TIMEOUT_MS = 65_000; // above the 60 s idle timeout of common load balancers

export interface RunningRegistry {
  /** `http://host:port` */
  url: string;
  host: string;
  port: number;
  store: RegistryStore;
  /** Stop accepting, finish requests in flight, then resolve. */
  close(): Promise<void>;
  /** Resolves once the server has stopped (by close() or a signal). */
  closed: Promise<void>;
}

/**
 * A response that remembers the Content-Length it was sent with (for the request log), and checks
 * its socket for a stalled client every `stallCheckMs` once the body is being written.
 */
class LoggedResponse<R extends IncomingMessage = IncomingMessage> extends ServerResponse<R> {
  contentLength: number | undefined;
  stallCheckMs = 0;

  override writeHead(status: number, ...rest: unknown[]): this {
    // Node's socket timeout skips one period when the kernel took bytes since the last write
    // (net.Socket#_onTimeout compares write queue sizes), so a stalled body was closed only after
    // two periods (120 s for 60). Checking twice per idle timeout closes it within one.
    if (this.stallCheckMs > 0) this.socket?.setTimeout(this.stallCheckMs);
    const headers = rest[rest.length - 1];
    if (headers && typeof headers === 'object' && !Array.isArray(headers)) {
      const h = headers as OutgoingHttpHeaders;
      const length = h['content-length'] ?? h['Content-Length'];
      if (length !== undefined) this.contentLength = Number(length);
    }
    return (super.writeHead as (...args: unknown[]) => this)(status, ...rest);
  }
}

/** Dot segments (`/../`, `/./`, also percent-encoded) in the raw request path: a traversal attempt. */
const DOT_SEGMENT = /(?:^|\/)(?:\.|%2e){1,2}(?:\/|$)/i;

const jsonHeaders = (body: string) =>
  baseHeaders({
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
  });

function reject(res: ServerResponse, code: ErrorCode, message: string, detail: unknown, head: boolean): void {
  const body = errorBody(code, message, detail);
  res.writeHead(400, jsonHeaders(body));
  res.end(head ? undefined : body);
}

/** RFC 9112 §3.2: more than one Host field line is a 400 (Node would silently keep the first). */
function hostCount(req: IncomingMessage): number {
  return req.rawHeaders.filter((name, i) => i % 2 === 0 && name.toLowerCase() === 'host').length;
}

/**
 * A request the adapter cannot turn into a URL (a backslash in the path, a missing or malformed
 * Host): the spec's error JSON, like every other error, instead of the adapter's empty 400.
 */
function requestRejected(error: unknown): Response {
  const invalid = error instanceof RequestError;
  const message = invalid ? error.message.toLowerCase() : 'internal error';
  const code: ErrorCode = /path/.test(message) ? 'NAME_INVALID' : 'UNKNOWN';
  const body = errorBody(code, message === 'invalid url' ? 'invalid Host header or request path' : message);
  return new Response(body, { status: invalid ? 400 : 500, headers: jsonHeaders(body) });
}

/** What Node's HTTP parser refused, by its error code: status and message for the error JSON. */
function parserRejection(code: string | undefined): [number, string] {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'ERR_HTTP_HEADERS_TIMEOUT') return [408, 'request not received in time'];
  if (code === 'HPE_HEADER_OVERFLOW') return [431, 'request headers too large'];
  if (code === 'HPE_INVALID_URL') return [400, 'invalid character in the request path'];
  return [400, 'malformed HTTP request'];
}

/**
 * Node's `clientError`: the parser refused the request (a raw control byte in the path, a bad
 * header, a timeout) before any handler ran. Answers with the spec's error JSON and closes.
 */
function onClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  const inResponse = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage?.headersSent;
  if (error.code === 'ECONNRESET' || !socket.writable || inResponse) {
    socket.destroy();
    return;
  }
  const [status, message] = parserRejection(error.code);
  const body = errorBody(status === 400 && error.code === 'HPE_INVALID_URL' ? 'NAME_INVALID' : 'UNKNOWN', message);
  const headers = Object.entries({ ...jsonHeaders(body), Connection: 'close' }).map(([k, v]) => `${k}: ${v}\r\n`);
  socket.end(`HTTP/1.1 ${status} ${status === 408 ? 'Request Timeout' : status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\n${headers.join('')}\r\n${body}`);
}

/**
 * On Node, every blob body (bytes, a file, a multipart answer, a pull-through stream) goes through
 * the bounded pump (a file without any web stream at all); a failure mid-body just cuts the
 * connection, which is how HTTP reports it.
 */
const sendNodeStream: StreamSender = (c, status, headers, body) => {
  const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
  if (!outgoing) return undefined;
  outgoing.writeHead(status, headers);
  pumpBody(body, outgoing).then(
    (done) => done && outgoing.end(),
    (error) => outgoing.destroy(error),
  );
  return RESPONSE_ALREADY_SENT;
};

export async function startRegistry(options: RegistryOptions = {}): Promise<RunningRegistry> {
  const store =
    typeof options.store === 'object' ? options.store : new LayoutStore(options.store ?? DEFAULT_STORE);
  const upstream = options.upstream
    ? createPullThrough(store, options.upstream, {
        onError: (message) => process.stderr.write(`registry: upstream: ${message}\n`),
        tagTtlMs: options.tagTtlMs,
        ...options.upstreamOptions,
      })
    : undefined;
  const app = createApp({ store, upstream, sendStream: sendNodeStream });
  const listener = getRequestListener(app.fetch, { errorHandler: requestRejected });
  const log = createRequestLog(options.log);
  const idleTimeoutMs = options.idleTimeoutMs ?? (Number(process.env.DEPOT_SERVE_IDLE_TIMEOUT_MS) || 60_000);

  // requireHostHeader off: a missing Host reaches the adapter, which rejects it with error JSON.
  const server = createServer({ ServerResponse: LoggedResponse, requireHostHeader: false }, (req, res) => {
    const start = performance.now();
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const path = q >= 0 ? url.slice(0, q) : url;
    res.stallCheckMs = idleTimeoutMs / 2;
    res.once('close', () => {
      let bytes: number | undefined;
      if (req.method === 'HEAD' || res.statusCode === 304) bytes = 0;
      else if (res.writableFinished) bytes = (res as LoggedResponse).contentLength;
      log.line(formatRequest(req.method ?? '-', path, res.statusCode, bytes, performance.now() - start));
    });
    if (stopping) res.setHeader('Connection', 'close'); // no more requests on this connection
    const head = req.method === 'HEAD';
    if (DOT_SEGMENT.test(path)) return reject(res, 'NAME_INVALID', 'path contains dot segments', { path }, head);
    if (hostCount(req) > 1) return reject(res, 'UNKNOWN', 'more than one Host header', undefined, head);
    listener(req, res);
  });
  let stopping = false;
  server.on('clientError', onClientError);
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  // Socket inactivity: reset whenever request bytes arrive or a write starts; the pump writes
  // again only once the client took the previous chunk, so a client that stops reading times out
  // (checked every idleTimeoutMs / 2 while a response is written: LoggedResponse).
  server.timeout = idleTimeoutMs;

  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 5000, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
  let closing: Promise<void> | undefined;
  const onSignal = () => void close();

  function close(): Promise<void> {
    closing ??= (async () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      stopping = true;
      // Stop accepting (net.Server's close: http.Server's would also drop idle connections at
      // once, including one whose request is still on its way in).
      const stopped = new Promise<void>((resolve) => Server.prototype.close.call(server, () => resolve()));
      const timer = setTimeout(() => server.closeAllConnections(), options.shutdownTimeoutMs ?? 10_000);
      // After a short grace for requests already sent, idle connections are closed as they go idle.
      let sweep: NodeJS.Timeout | undefined;
      const grace = setTimeout(() => {
        server.closeIdleConnections();
        sweep = setInterval(() => server.closeIdleConnections(), 50);
      }, 250);
      await stopped;
      clearTimeout(timer);
      clearTimeout(grace);
      clearInterval(sweep);
      log.flush();
      await store.close?.();
      resolveClosed();
    })();
    return closing;
  }

  if (options.handleSignals) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  return { url, host, port, store, close, closed };
}
