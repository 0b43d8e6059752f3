// gzip members compressed on worker threads with gzipSync: the asynchronous zlib API hands its
// output back in 16 KiB pieces, which halves throughput on large members. A worker also hashes
// the leading bytes it is given (a chunk's chunkDigest), so that pass leaves the main thread.
// One pool per process, started on first use; its threads keep the process alive only while
// they have work.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { DeflateSettings } from './deflate.ts';

export interface GzipJob {
  /** Handed over: when it is a buffer of its own, it moves to the thread and is detached here. */
  bytes: Uint8Array;
  settings: DeflateSettings;
  /** Also return the sha256 of `bytes[0, digestLength)` ("sha256:<hex>"); 0 for none. */
  digestLength: number;
}

export interface GzipResult {
  gzip: Buffer;
  digest?: string;
}

// Plain JavaScript, so it runs the same under tsx and from the bundled CLI.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { gzipSync } = require('node:zlib');
const { createHash } = require('node:crypto');
parentPort.on('message', ({ id, bytes, settings, digestLength }) => {
  try {
    const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const digest = digestLength > 0 ? 'sha256:' + createHash('sha256').update(view.subarray(0, digestLength)).digest('hex') : undefined;
    const gzip = gzipSync(view, settings);
    parentPort.postMessage({ id, gzip, digest }, [gzip.buffer]);
  } catch (error) {
    parentPort.postMessage({ id, error: String(error && error.message || error) });
  }
});
`;

interface Waiting {
  resolve: (result: GzipResult) => void;
  reject: (error: Error) => void;
}

class GzipPool {
  private readonly idle: Worker[] = [];
  private readonly queue: { id: number; job: GzipJob }[] = [];
  private readonly waiting = new Map<number, Waiting>();
  private readonly busy = new Map<Worker, number>();
  private nextId = 0;

  constructor(readonly threads: number) {
    for (let i = 0; i < threads; i++) this.idle.push(this.spawn());
  }

  /** Compress one member; resolves with a standard gzip member (RFC 1952). */
  compress(job: GzipJob): Promise<GzipResult> {
    const id = this.nextId++;
    const done = new Promise<GzipResult>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    this.queue.push({ id, job });
    this.dispatch();
    return done;
  }

  private spawn(): Worker {
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.on('message', (message: { id: number; gzip?: Uint8Array; digest?: string; error?: string }) => {
      const waiter = this.waiting.get(message.id)!;
      this.waiting.delete(message.id);
      this.busy.delete(worker);
      worker.unref();
      this.idle.push(worker);
      this.dispatch();
      if (message.error !== undefined) waiter.reject(new Error(`gzip: ${message.error}`));
      else waiter.resolve({ gzip: Buffer.from(message.gzip!.buffer, message.gzip!.byteOffset, message.gzip!.byteLength), digest: message.digest });
    });
    worker.on('error', (error) => this.replace(worker, error));
    worker.unref(); // after the listeners: adding one refs the worker again
    return worker;
  }

  /** A thread that died fails its job and is replaced, so one bad member does not stall the pool. */
  private replace(worker: Worker, error: Error): void {
    const id = this.busy.get(worker);
    this.busy.delete(worker);
    if (id !== undefined) {
      this.waiting.get(id)?.reject(error);
      this.waiting.delete(id);
    }
    this.idle.push(this.spawn());
    this.dispatch();
  }

  private dispatch(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const worker = this.idle.pop()!;
      const { id, job } = this.queue.shift()!;
      this.busy.set(worker, id);
      worker.ref();
      // A buffer of its own moves to the thread without a copy (the caller hands it over); a view
      // into a larger one is copied, as cloning it would copy its whole backing buffer.
      const own = job.bytes.byteOffset === 0 && job.bytes.byteLength === job.bytes.buffer.byteLength && job.bytes.buffer instanceof ArrayBuffer;
      const bytes = own ? job.bytes : job.bytes.slice();
      worker.postMessage({ id, bytes, settings: job.settings, digestLength: job.digestLength }, [bytes.buffer as ArrayBuffer]);
    }
  }
}

let shared: GzipPool | undefined;

/** The process's pool: one thread per core (DEPOT_GZIP_THREADS overrides). */
export function gzipPool(): GzipPool {
  shared ??= new GzipPool(Number(process.env.DEPOT_GZIP_THREADS) || availableParallelism());
  return shared;
}
