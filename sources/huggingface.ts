// A model straight from Hugging Face, exactly at its pinned sha: the recursive file list (every
// page) through @huggingface/hub, then the files' bytes in one of two ways:
// - with a content cache: every file downloaded into it first (several at a time, resumed and
//   retried) and verified against its LFS sha256 or git blob id before the writer sees a byte;
// - streaming (no cache): ranged requests run ahead of the writer through a bounded disk window
//   (download-window.ts), each file verified as its last byte is read, so disk stays within the
//   window whatever the model's size.
// The token goes to the Hub only, never to the storage hosts it redirects to.
import { tmpdir } from 'node:os';
import { HubApiError, listFiles } from '@huggingface/hub';
import { readOrder } from '../image/layer.ts';
import { ContentCache, TransientError, VerifyError, type Body, type ContentKey } from './content-cache.ts';
import { DownloadWindow } from './download-window.ts';
import { isTransientNetworkError, runConcurrently, withRetries } from '../client/retry.ts';
import { readFileChunks, SourceError, type ModelSource, type SourceFile } from './folder.ts';
import { hubResolveUrl } from './hub-url.ts';
import { hubSettings, isExcluded, type HubSettings } from '../models/repository.ts';

/**
 * How long a Hub download may send nothing before it is dropped and resumed, in ms: undici's own
 * body timeout is 5 minutes, a stalled storage connection would hold the push that long.
 */
const HUB_IDLE_TIMEOUT_MS = Number(process.env.DEPOT_HUB_IDLE_TIMEOUT_MS) || 30_000;

export interface HuggingFaceOptions extends Partial<HubSettings> {
  /** Download every file into this content cache first; without one, stream through a window. */
  cache?: ContentCache | string;
  /** Streaming: the layer's prefetch rule, so the window fetches files in the order the writer reads them. */
  prefetch?: (file: SourceFile) => boolean;
  /** Streaming: disk the download window may use, in bytes (default 1 GiB). */
  windowBytes?: number;
  /** Streaming: where the window's spool folder is made (default the OS temp folder). */
  spoolDir?: string;
  /** Files (cache) or ranged requests (streaming) downloaded at once (default 4). */
  concurrency?: number;
  /** A Hub download that sends no byte for this long is dropped and resumed (default DEPOT_HUB_IDLE_TIMEOUT_MS, else 30 s). */
  idleTimeoutMs?: number;
  /** Download progress: bytes received so far (cached files count at once) and the total. */
  onDownload?: (done: number, total: number) => void;
}

interface HubFile extends SourceFile {
  key: ContentKey;
}

export class HuggingFaceSource implements ModelSource {
  private readonly settings: HubSettings;
  private readonly cache?: ContentCache;
  private readonly local = new Map<string, string>();
  private window?: DownloadWindow;
  private closed = false;
  /** Aborted by close(): stops the listing and every download in flight. */
  private readonly stopped = new AbortController();
  private readonly listed = new Map<string, HubFile>();

  constructor(
    readonly name: string,
    readonly sha: string,
    private readonly options: HuggingFaceOptions,
  ) {
    const defaults = hubSettings();
    this.settings = { hubUrl: options.hubUrl ?? defaults.hubUrl, token: options.token ?? defaults.token };
    if (this.settings.token && !this.settings.token.startsWith('hf_')) throw new SourceError('HF_TOKEN must be a Hugging Face access token (it starts with "hf_")');
    this.cache = typeof options.cache === 'string' ? new ContentCache(options.cache) : options.cache;
  }

  /**
   * Lists the files at the sha. With a cache, downloads every one of them into it; streaming,
   * starts fetching them in archive order (the order the layer writer must read them in).
   */
  async list(): Promise<SourceFile[]> {
    const files = await this.listing();
    if (this.closed) throw new SourceError(`${this.name}: closed while listing`);
    const total = files.reduce((sum, f) => sum + f.size, 0);
    let done = 0;
    const onBytes = (bytes: number) => {
      done += bytes;
      this.options.onDownload?.(done, total);
    };
    this.options.onDownload?.(0, total);
    if (this.cache) {
      const cache = this.cache;
      await runConcurrently(files, this.options.concurrency ?? 4, async (file) => {
        this.local.set(file.path, await cache.fetch(file.key, file.path, (offset) => this.open(file, offset, file.size), onBytes));
      });
    } else {
      const ordered = readOrder(files, this.options.prefetch) as HubFile[];
      for (const file of ordered) this.listed.set(file.path, file);
      this.window = new DownloadWindow(ordered, (file, start, end, signal) => this.open(file as HubFile, start, end, signal), {
        dir: this.options.spoolDir ?? tmpdir(),
        windowBytes: this.options.windowBytes,
        concurrency: this.options.concurrency,
        onBytes,
      });
      await this.window.start();
    }
    return files.map(({ path, size }) => ({ path, size }));
  }

  /** The file's bytes; streaming, files must be read in readOrder (with the same prefetch rule). */
  chunks(file: SourceFile, chunkSize: number): AsyncIterable<Buffer> {
    const listed = this.listed.get(file.path);
    if (this.window && listed) return this.window.chunks(listed, chunkSize);
    const local = this.local.get(file.path);
    if (!local) throw new SourceError(`${file.path} was not downloaded`);
    return readFileChunks(local, file.size, chunkSize);
  }

  /** Streaming: the most bytes the download window held on disk at once. */
  get peakWindowBytes(): number {
    return this.window?.peakBytes ?? 0;
  }

  /** Stops the downloads still running and deletes the streaming spool. */
  async close(): Promise<void> {
    this.closed = true;
    this.stopped.abort(new SourceError(`${this.name}: closed`));
    await this.window?.close();
  }

  /** The file list at the sha, every page; a transient failure (5xx, 429, a cut page) lists again from the start. */
  private listing(): Promise<HubFile[]> {
    return withRetries(() => this.listOnce(), { retryable: (error) => error instanceof TransientError });
  }

  private async listOnce(): Promise<HubFile[]> {
    const files: HubFile[] = [];
    try {
      const credentials = this.credentials(undefined, `${this.name}: listing the files`);
      for await (const entry of listFiles({ repo: { type: 'model', name: this.name }, revision: this.sha, recursive: true, ...credentials })) {
        if (entry.type !== 'file' || isExcluded(entry.path)) continue;
        const key: ContentKey | undefined = entry.lfs
          ? { algorithm: 'sha256', hex: entry.lfs.oid, size: entry.lfs.size }
          : entry.oid
            ? { algorithm: 'git-sha1', hex: entry.oid, size: entry.size }
            : undefined;
        if (!key || !/^[0-9a-f]{40,64}$/.test(key.hex)) throw new SourceError(`${this.name}: the Hub lists ${entry.path} without a usable hash`);
        files.push({ path: entry.path, size: key.size, key });
      }
    } catch (error) {
      if (isTransientNetworkError(error)) throw new TransientError(`${this.name} at ${this.sha}: listing the files failed: ${(error as Error).message}`);
      throw this.explain(error);
    }
    return files;
  }

  /** The hub library's parameters: its fetch bounded by the idle timeout and stopped by `signal` and by close(). */
  private credentials(signal: AbortSignal | undefined, what: string) {
    const idleMs = this.options.idleTimeoutMs ?? HUB_IDLE_TIMEOUT_MS;
    const stop = signal ? AbortSignal.any([signal, this.stopped.signal]) : this.stopped.signal;
    return { hubUrl: this.settings.hubUrl, accessToken: this.settings.token, fetch: idleBoundedFetch(hubFetch(this.settings.hubUrl), idleMs, stop, what) };
  }

  /**
   * Bytes [start, end) of the file, resolved at the pinned sha (the storage host it redirects to
   * gets no token). A connection that sends nothing for `idleTimeoutMs` (headers or body) is
   * dropped with a TransientError (idleBoundedFetch), so the caller resumes from the byte it reached.
   */
  private async open(file: HubFile, start: number, end: number, signal?: AbortSignal): Promise<Body> {
    const credentials = this.credentials(signal, file.path);
    const headers: Record<string, string> = start > 0 || end < file.size ? { Range: `bytes=${start}-${end - 1}` } : {};
    if (credentials.accessToken) headers.Authorization = `Bearer ${credentials.accessToken}`;
    const response = await credentials.fetch(hubResolveUrl(this.settings.hubUrl, this.name, this.sha, file.path), { headers });
    const served = servedSize(response);
    if (served !== undefined && served !== file.size) {
      await response.body?.cancel();
      throw new VerifyError(`${file.path}: the Hub serves ${served < file.size ? 'fewer' : 'more'} bytes than the ${file.size} it lists${served >= 0 ? ` (${served})` : ''}`);
    }
    if (!response.ok || !response.body) {
      await response.body?.cancel();
      throw this.explain(new HubApiError(response.url, response.status, response.headers.get('x-request-id') ?? undefined, `downloading ${file.path} failed with status ${response.status}`));
    }
    const range = /^bytes (\d+)-/.exec(response.headers.get('content-range') ?? '');
    const reader = response.body.getReader();
    async function* body(): AsyncGenerator<Uint8Array> {
      try {
        for (let next = await reader.read(); !next.done; next = await reader.read()) yield next.value;
      } finally {
        await reader.cancel().catch(() => {});
      }
    }
    return { from: response.status === 206 && range ? Number(range[1]) : 0, body: body() };
  }

  /** One clear line for what the Hub said. */
  private explain(error: unknown): Error {
    if (!(error instanceof HubApiError)) return error as Error;
    const what = `${this.name} at ${this.sha}`;
    if (error.statusCode >= 500 || error.statusCode === 429) return new TransientError(`${what}: the Hub answered ${error.statusCode}`);
    if (error.statusCode === 401 && this.settings.token) return new SourceError(`${what}: the Hub rejected HF_TOKEN (${firstSentence(error.message)})`);
    if (error.statusCode === 401 || error.statusCode === 403) return new SourceError(`${what}: the repository is private or gated; set HF_TOKEN to a token with access`);
    if (error.statusCode === 404) return new SourceError(`${what}: not found on ${this.settings.hubUrl} (${firstSentence(error.message)})`);
    return new SourceError(`${what}: the Hub answered ${error.statusCode} (${firstSentence(error.message)})`);
  }
}

function firstSentence(message: string): string {
  return message.split('. URL:')[0];
}

/**
 * The file's whole size as a download says it (RFC 9110): a 206's or 416's Content-Range
 * `/complete-length`, a 200's Content-Length (unencoded); -1 for a 416 without one (the range
 * starts past the end: the file is shorter than asked); undefined when it does not say.
 */
function servedSize(response: Response): number | undefined {
  const total = /\/(\d+)$/.exec(response.headers.get('content-range') ?? '');
  if ((response.status === 206 || response.status === 416) && total) return Number(total[1]);
  if (response.status === 416) return -1;
  const length = response.headers.get('content-length');
  if (response.status === 200 && length !== null && !response.headers.get('content-encoding')) return Number(length);
  return undefined;
}

/**
 * `inner` bounded for a peer that stalls: a request that gets no headers, or whose body sends
 * nothing, for `idleMs` is aborted with a TransientError (undici's own timeouts are 5 minutes);
 * `stop` aborting aborts it with its reason. The returned Response's body is a fresh stream whose
 * every read is timed; each request has its own AbortController, linked to `stop` only until its
 * body ends (one listener per request on a shared signal would pile up).
 */
export function idleBoundedFetch(inner: typeof fetch, idleMs: number, stop: AbortSignal, what: string): typeof fetch {
  return async (input, init = {}) => {
    stop.throwIfAborted();
    const request = new AbortController();
    const abort = () => request.abort(stop.reason);
    stop.addEventListener('abort', abort, { once: true });
    let timer: NodeJS.Timeout | undefined;
    const stalled = new TransientError(`${what}: the Hub sent nothing for ${idleMs / 1000} s`);
    const arm = () => (clearTimeout(timer), (timer = setTimeout(() => request.abort(stalled), idleMs)));
    const settle = () => (clearTimeout(timer), stop.removeEventListener('abort', abort));
    const why = (error: unknown) => (request.signal.aborted ? request.signal.reason : error);
    let response: Response;
    try {
      arm();
      response = await inner(input, { ...init, signal: request.signal });
      clearTimeout(timer);
    } catch (error) {
      settle();
      throw why(error);
    }
    if (!response.body || [204, 205, 304].includes(response.status)) return (settle(), response);
    const reader = response.body.getReader();
    // Aborting a fetch does not always end a read already waiting on its body (seen under load:
    // the read never settled and, with nothing else pending, node exited 13); cancel the reader.
    request.signal.addEventListener('abort', () => void reader.cancel(request.signal.reason).catch(() => {}), { once: true });
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        arm();
        try {
          const next = await reader.read();
          clearTimeout(timer);
          // A cancelled reader reads as done: an abort must not pass for the body's end.
          if (request.signal.aborted) throw request.signal.reason;
          if (next.done) (settle(), controller.close());
          else controller.enqueue(next.value);
        } catch (error) {
          settle();
          controller.error(why(error));
        }
      },
      cancel(reason) {
        settle();
        return reader.cancel(reason).catch(() => {});
      },
    });
    const bounded = new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
    return Object.defineProperty(bounded, 'url', { value: response.url });
  };
}

/**
 * fetch that follows redirects itself so the Authorization header is sent only to the Hub's own
 * origin, never to the storage host a download is redirected to.
 */
export function hubFetch(hubUrl: string): typeof fetch {
  const hubOrigin = new URL(hubUrl).origin;
  return async (input, init = {}) => {
    let url = new URL(input instanceof Request ? input.url : String(input));
    const headers = new Headers(init.headers);
    for (let redirects = 0; ; redirects++) {
      if (url.origin !== hubOrigin) headers.delete('authorization');
      const response = await fetch(url, { ...init, headers, redirect: 'manual' });
      const location = response.headers.get('location');
      if (response.status < 300 || response.status >= 400 || !location) return response;
      await response.body?.cancel();
      if (redirects >= 10) throw new SourceError(`too many redirects from ${hubOrigin}`);
      url = new URL(location, url);
    }
  };
}
