// Clients that ask for a response and never read it (the memory attack of issue 9, finding 7),
// and the resident memory of a process, for the server-hardening test and `npm run bench`.
import { readFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';

export interface SlowReaders {
  /**
   * Starts reading at last; resolves, once every connection has ended, with the response bytes
   * (head and body) each one received.
   */
  drain(): Promise<number[]>;
  /** Destroys every connection. */
  close(): void;
}

/**
 * Opens `count` connections to 127.0.0.1:`port`, each sending one `GET path` (with `range` as its
 * Range header, when given) and then never reading (the socket is paused, so the kernel buffers
 * fill and the server's writes stall). Resolves once every request has been sent.
 */
export async function startSlowReaders(port: number, path: string, count: number, range?: string): Promise<SlowReaders> {
  const sockets: Socket[] = [];
  const batch = 100; // connect in batches: a burst of thousands overflows the listen backlog
  for (let i = 0; i < count; i += batch) {
    await Promise.all(
      Array.from({ length: Math.min(batch, count - i) }, () =>
        new Promise<void>((resolve, reject) => {
          const socket = connect(port, '127.0.0.1', () => {
            socket.pause();
            const extra = range ? `Range: ${range}\r\n` : '';
            socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${extra}\r\n`, () => resolve());
          });
          socket.once('error', reject);
          sockets.push(socket);
        }),
      ),
    );
  }
  const drain = (socket: Socket) =>
    new Promise<number>((resolve) => {
      let received = 0;
      socket.on('data', (chunk: Buffer) => (received += chunk.length));
      socket.once('close', () => resolve(received));
      socket.resume();
    });
  return { drain: () => Promise.all(sockets.map(drain)), close: () => sockets.forEach((s) => s.destroy()) };
}

/** Resident set size of a process on Linux, in bytes (`VmRSS` of /proc/PID/status). */
export async function residentBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!kib) throw new Error(`no VmRSS for process ${pid}`);
  return Number(kib[1]) * 1024;
}
