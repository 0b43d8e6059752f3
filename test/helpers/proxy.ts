// An HTTP proxy in front of a registry that records every request (and the response bytes it
// passed back) and can cut an upload: after `cutAfter` bytes of a matching request body it drops
// both connections, as a flaky network does.
import { createServer, request, type Server } from 'node:http';

export interface ProxyFault {
  method: string;
  /** Only requests whose URL contains this. */
  urlIncludes?: string;
  /** Only requests whose Content-Length is larger than this (a body size limit, with `status: 413`). */
  largerThan?: number;
  /** Bytes of the request body to pass before the connection drops... */
  cutAfter?: number;
  /** ...or answer this status (an OCI error body) instead of forwarding... */
  status?: number;
  /** With `status`: answer before reading the body and close the connection (nginx's 413). */
  unread?: boolean;
  /** ...or forward, adding these headers to the answer (a registry claiming what it did not do). */
  addHeaders?: Record<string, string>;
  /** How many requests to cut (default 1; Infinity for a dead link); shorter bodies pass. */
  times?: number;
}

export interface RecordingProxy {
  url: string;
  hostPort: string;
  /** Every request, with the bytes of its response body passed back so far. */
  requests: { method: string; url: string; bytes: number }[];
  faults: ProxyFault[];
  count(method: string, urlIncludes?: string): number;
  close(): Promise<void>;
}

export async function startRecordingProxy(target: string): Promise<RecordingProxy> {
  const upstream = new URL(target);
  const proxy: RecordingProxy = {
    url: '',
    hostPort: '',
    requests: [],
    faults: [],
    count: (method, urlIncludes = '') => proxy.requests.filter((r) => r.method === method && r.url.includes(urlIncludes)).length,
    close: async () => {},
  };
  const server: Server = createServer((req, res) => {
    const record = { method: req.method!, url: req.url!, bytes: 0 };
    proxy.requests.push(record);
    const size = Number(req.headers['content-length'] ?? 0);
    const fault = proxy.faults.find((f) => f.method === req.method && req.url!.includes(f.urlIncludes ?? '') && size > (f.largerThan ?? -1) && (f.times ?? 1) > 0);
    if (fault?.status) {
      fault.times = (fault.times ?? 1) - 1;
      if (!fault.unread) req.resume();
      res.writeHead(fault.status, { 'Content-Type': 'application/json', ...(fault.unread ? { Connection: 'close' } : {}) });
      return void res.end(JSON.stringify({ errors: [{ code: 'UNSUPPORTED', message: 'injected by the test proxy' }] }));
    }
    // The Host header stays the proxy's, so the registry's upload Locations point back through it.
    const out = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      const added = fault?.addHeaders && (fault.times ?? 1) > 0 ? fault.addHeaders : {};
      if (fault?.addHeaders) fault.times = (fault.times ?? 1) - 1;
      res.writeHead(up.statusCode ?? 502, { ...up.headers, ...added });
      up.on('data', (chunk: Buffer) => (record.bytes += chunk.length));
      up.pipe(res);
    });
    out.on('error', () => res.destroy());
    let passed = 0;
    req.on('data', (chunk: Buffer) => {
      if (fault?.cutAfter !== undefined && (fault.times ?? 1) > 0 && passed + chunk.length > fault.cutAfter) {
        fault.times = (fault.times ?? 1) - 1;
        out.write(chunk.subarray(0, fault.cutAfter - passed));
        passed = fault.cutAfter;
        req.pause();
        setTimeout(() => {
          out.destroy();
          res.destroy();
          req.destroy();
        }, 50);
        return;
      }
      passed += chunk.length;
      out.write(chunk);
    });
    req.on('end', () => out.end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  proxy.url = `http://127.0.0.1:${port}`;
  proxy.hostPort = `127.0.0.1:${port}`;
  proxy.close = () =>
    new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return proxy;
}
