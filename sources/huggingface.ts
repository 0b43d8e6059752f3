// A model straight from Hugging Face, exactly at its pinned sha: the recursive file list (every
// page) through @huggingface/hub, each file downloaded into the content cache (several at a time,
// resumed and retried) and verified against its LFS sha256 or git blob id and size before the
// layer writer sees a byte. The token goes to the Hub only, never to the storage hosts it
// redirects to.
import { HubApiError, listFiles } from '@huggingface/hub';
import { ContentCache, TransientError, type Body, type ContentKey } from './content-cache.ts';
import { runConcurrently } from '../client/retry.ts';
import { readFileChunks, SourceError, type ModelSource, type SourceFile } from './folder.ts';
import { hubResolveUrl } from './hub-url.ts';
import { hubSettings, isExcluded, type HubSettings } from '../models/repository.ts';

export const DEFAULT_CACHE = '.depot/cache';

export interface HuggingFaceOptions extends Partial<HubSettings> {
  cache: ContentCache | string;
  /** Files downloaded at once (default 4). */
  concurrency?: number;
  /** Download progress: bytes in the cache so far (cached files count at once) and the total. */
  onDownload?: (done: number, total: number) => void;
}

interface HubFile extends SourceFile {
  key: ContentKey;
}

export class HuggingFaceSource implements ModelSource {
  private readonly settings: HubSettings;
  private readonly cache: ContentCache;
  private readonly local = new Map<string, string>();

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

  /** Lists the files at the sha and downloads every one of them into the cache. */
  async list(): Promise<SourceFile[]> {
    const files = await this.listing();
    const total = files.reduce((sum, f) => sum + f.size, 0);
    let done = 0;
    this.options.onDownload?.(0, total);
    await runConcurrently(files, this.options.concurrency ?? 4, async (file) => {
      const local = await this.cache.fetch(file.key, file.path, (offset) => this.open(file, offset), (bytes) => {
        done += bytes;
        this.options.onDownload?.(done, total);
      });
      this.local.set(file.path, local);
    });
    return files.map(({ path, size }) => ({ path, size }));
  }

  chunks(file: SourceFile, chunkSize: number): AsyncIterable<Buffer> {
    const local = this.local.get(file.path);
    if (!local) throw new SourceError(`${file.path} was not downloaded`);
    return readFileChunks(local, file.size, chunkSize);
  }

  private async listing(): Promise<HubFile[]> {
    const files: HubFile[] = [];
    try {
      for await (const entry of listFiles({ repo: { type: 'model', name: this.name }, revision: this.sha, recursive: true, ...this.credentials() })) {
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
      throw this.explain(error);
    }
    return files;
  }

  private credentials() {
    return { hubUrl: this.settings.hubUrl, accessToken: this.settings.token, fetch: hubFetch(this.settings.hubUrl) };
  }

  /** The file's bytes from `offset`, resolved at the pinned sha. */
  private async open(file: HubFile, offset: number): Promise<Body> {
    const credentials = this.credentials();
    const headers: Record<string, string> = offset > 0 ? { Range: `bytes=${offset}-` } : {};
    if (credentials.accessToken) headers.Authorization = `Bearer ${credentials.accessToken}`;
    const response = await credentials.fetch(hubResolveUrl(this.settings.hubUrl, this.name, this.sha, file.path), { headers });
    if (!response.ok || !response.body) {
      await response.body?.cancel();
      const missing = response.status === 404 && response.headers.get('X-Error-Code') === 'EntryNotFound';
      if (missing) throw new SourceError(`${this.name}: ${file.path} is listed at ${this.sha} but cannot be downloaded`);
      const problem = `${this.name}: downloading ${file.path} failed with status ${response.status}`;
      throw response.status >= 500 || response.status === 429 ? new TransientError(problem) : new SourceError(problem);
    }
    return { from: response.status === 206 ? offset : 0, body: response.body };
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
