// `depot-ai serve`: the registry app on Node's HTTP server, with a request log and graceful shutdown.
import { getRequestListener } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { pipeline, Readable } from 'node:stream';
import { createServer, ServerResponse, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { Server, type AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { DEFAULT_STORE } from '../image/layout.ts';
import { API_VERSION, API_VERSION_HEADER, createApp, type StreamSender } from './app.ts';
import { errorBody } from './errors.ts';
import { LayoutStore } from './fs-store.ts';
import { createRequestLog, formatRequest, type LogSink } from './log.ts';
import { NODE_PUMP, type RegistryStore } from './store.ts';
import { createPullThrough } from './upstream.ts';

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
  /** Where request lines go: a function, false for none, or (default) stdout in batches. */
  log?: LogSink | false;
  /** Stop gracefully on SIGINT/SIGTERM (default false; the CLI turns it on). */
  handleSignals?: boolean;
  /** How long close() waits for requests in flight before cutting them off (default 10 s). */
  shutdownTimeoutMs?: number;
}

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

/** A response that remembers the Content-Length it was sent with (for the request log). */
class LoggedResponse<R extends IncomingMessage = IncomingMessage> extends ServerResponse<R> {
  contentLength: number | undefined;

  override writeHead(status: number, ...rest: unknown[]): this {
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

function rejectTraversal(res: ServerResponse, path: string, head: boolean): void {
  const body = errorBody('NAME_INVALID', 'path contains dot segments', { path });
  res.writeHead(400, {
    [API_VERSION_HEADER]: API_VERSION,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(head ? undefined : body);
}

/**
 * On Node, a stream body is piped straight into the socket (a file without any web stream at all);
 * a failure mid-body just cuts the connection, which is how HTTP reports it.
 */
const sendNodeStream: StreamSender = (c, status, headers, body) => {
  const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
  if (!outgoing) return undefined;
  outgoing.writeHead(status, headers);
  const pump = body[NODE_PUMP];
  if (pump) pump(outgoing).catch((error) => outgoing.destroy(error));
  else pipeline(Readable.fromWeb(body as import('node:stream/web').ReadableStream<Uint8Array>), outgoing, () => {}); // an error or an early close destroys both sides
  return RESPONSE_ALREADY_SENT;
};

export async function startRegistry(options: RegistryOptions = {}): Promise<RunningRegistry> {
  const store =
    typeof options.store === 'object' ? options.store : new LayoutStore(options.store ?? DEFAULT_STORE);
  const upstream = options.upstream
    ? createPullThrough(store, options.upstream, {
        onError: (message) => process.stderr.write(`registry: upstream: ${message}\n`),
        tagTtlMs: options.tagTtlMs,
      })
    : undefined;
  const app = createApp({ store, upstream, sendStream: sendNodeStream });
  const listener = getRequestListener(app.fetch);
  const log = createRequestLog(options.log);

  const server = createServer({ ServerResponse: LoggedResponse }, (req, res) => {
    const start = performance.now();
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const path = q >= 0 ? url.slice(0, q) : url;
    res.once('close', () => {
      let bytes: number | undefined;
      if (req.method === 'HEAD' || res.statusCode === 304) bytes = 0;
      else if (res.writableFinished) bytes = (res as LoggedResponse).contentLength;
      log.line(formatRequest(req.method ?? '-', path, res.statusCode, bytes, performance.now() - start));
    });
    if (stopping) res.setHeader('Connection', 'close'); // no more requests on this connection
    if (DOT_SEGMENT.test(path)) return rejectTraversal(res, path, req.method === 'HEAD');
    listener(req, res);
  });
  let stopping = false;
  server.keepAliveTimeout = 65_000;

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
