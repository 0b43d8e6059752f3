// What the catalog commands ask Hugging Face, through @huggingface/hub: a repository's head sha,
// whether it is public and not gated, whether a revision exists, its total file size, the facts
// the site shows (models/facts.ts), and the most-downloaded models. The endpoint comes from HF_ENDPOINT (default https://huggingface.co),
// the token from HF_TOKEN. Network errors, 429 and 5xx are retried with backoff (Retry-After is
// honoured), then reported as one HubError line.
import { listFiles, listModels, modelInfo } from '@huggingface/hub';
import type { ModelFacts } from './facts.ts';
import { hubSettings, isExcluded } from './repository.ts';

export class HubError extends Error {}

export interface HubOptions {
  hubUrl: string;
  accessToken?: string;
  /** Tries after the first one. */
  retries: number;
  /** The first backoff delay; doubled on every retry. */
  backoffMs: number;
}

export function hubOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): HubOptions {
  const number = (value: string | undefined, fallback: number) => (value !== undefined && /^\d+$/.test(value) ? Number(value) : fallback);
  const { hubUrl, token } = hubSettings(env);
  return {
    hubUrl,
    accessToken: token,
    retries: number(env.DEPOT_HUB_RETRIES, 4),
    backoffMs: number(env.DEPOT_HUB_BACKOFF_MS, 1000),
  };
}

const MAX_RETRY_AFTER_MS = 60_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const retryable = (status: number) => status === 429 || status >= 500;

/** A fetch that retries network errors, 429 and 5xx, then throws a HubError naming the URL. */
export function retryingFetch(options: Pick<HubOptions, 'retries' | 'backoffMs'>, inner: typeof fetch = fetch): typeof fetch {
  return async (input, init) => {
    const url = (input instanceof Request ? input.url : String(input)).split('?')[0];
    let failure = '';
    for (let attempt = 0; ; attempt++) {
      let wait = options.backoffMs * 2 ** attempt;
      try {
        const response = await inner(input, init);
        if (!retryable(response.status)) return response;
        failure = `HTTP ${response.status}${response.status === 429 ? ' (rate limited)' : ''}`;
        const retryAfter = Number(response.headers.get('retry-after'));
        if (response.headers.has('retry-after') && Number.isFinite(retryAfter)) wait = Math.min(retryAfter * 1000, MAX_RETRY_AFTER_MS);
        await response.body?.cancel();
      } catch (error) {
        const cause = (error as Error & { cause?: Error & { code?: string } }).cause;
        failure = cause?.code ?? cause?.message ?? (error as Error).message;
      }
      if (attempt >= options.retries) {
        throw new HubError(`${url}: ${failure} after ${attempt + 1} ${attempt === 0 ? 'try' : 'tries'}`);
      }
      await sleep(wait);
    }
  };
}

/** One line for a repository that cannot be published. */
export function repoProblemMessage(name: string, problem: RepoProblem, hubUrl: string): string {
  if (problem === 'gated') return `${name} is gated on ${hubUrl}: only public, ungated models can be published`;
  if (problem === 'private') return `${name} is private on ${hubUrl}: only public models can be published`;
  return `${name} does not exist on ${hubUrl} (or is private)`;
}

/** A publishable repository's head sha, or why it cannot be published. */
export type RepoStatus = { sha: string; problem?: undefined } | { problem: RepoProblem; sha?: undefined };

/** Why a repository cannot be read: the Hub's X-Error-Code, or the status. */
export type RepoProblem = 'missing' | 'gated' | 'private';

export class Hub {
  private readonly fetch: typeof fetch;
  /** The Hub's X-Error-Code (RepoNotFound, GatedRepo, RevisionNotFound...) per failed URL. */
  private readonly errorCodes = new Map<string, string>();

  constructor(readonly options: HubOptions = hubOptionsFromEnv()) {
    const inner = retryingFetch(options);
    this.fetch = async (input, init) => {
      const response = await inner(input, init);
      const code = response.headers.get('x-error-code');
      if (!response.ok && code) this.errorCodes.set(response.url || String(input), code);
      return response;
    };
  }

  private get params() {
    return { hubUrl: this.options.hubUrl, accessToken: this.options.accessToken, fetch: this.fetch };
  }

  /** The repository at HEAD: public and ungated with its head sha, or why it cannot be published. */
  async repo(name: string): Promise<RepoStatus> {
    try {
      const info = await modelInfo({ name, additionalFields: ['sha'], ...this.params });
      if (info.private) return { problem: 'private' };
      if (info.gated) return { problem: 'gated' };
      if (!info.sha) throw new HubError(`${this.options.hubUrl}: no sha in the model info of ${name}`);
      return { sha: info.sha };
    } catch (error) {
      if (!notFound(error)) throw hubError(error);
      return { problem: this.errorCodes.get((error as { url: string }).url) === 'GatedRepo' ? 'gated' : 'missing' };
    }
  }

  async revisionExists(name: string, revision: string): Promise<boolean> {
    try {
      await modelInfo({ name, revision, ...this.params });
      return true;
    } catch (error) {
      if (notFound(error)) return false;
      throw hubError(error);
    }
  }

  /** Files and bytes at `revision`, as the image holds them (no .gitattributes). */
  async size(name: string, revision: string): Promise<{ files: number; bytes: number }> {
    let files = 0;
    let bytes = 0;
    try {
      for await (const entry of listFiles({ repo: { type: 'model', name }, revision, recursive: true, ...this.params })) {
        if (entry.type !== 'file' || isExcluded(entry.path)) continue;
        files++;
        bytes += entry.lfs?.size ?? entry.size;
      }
    } catch (error) {
      throw hubError(error);
    }
    return { files, bytes };
  }

  /**
   * What the Hub states about a repository (task, library, license, gated, parameter count,
   * downloads, likes), with the files and bytes at `sha`. Fields the Hub leaves out stay absent.
   */
  async facts(name: string, sha: string): Promise<ModelFacts> {
    let info;
    try {
      info = await modelInfo({ name, additionalFields: ['library_name', 'cardData', 'safetensors', 'tags'], ...this.params });
    } catch (error) {
      throw hubError(error);
    }
    const { files, bytes } = await this.size(name, sha);
    const cardLicense = (info.cardData as { license?: unknown } | undefined)?.license;
    const tagLicense = (info.tags as string[] | undefined)?.find((t) => t.startsWith('license:'))?.slice('license:'.length);
    const license = typeof cardLicense === 'string' ? cardLicense : Array.isArray(cardLicense) && typeof cardLicense[0] === 'string' ? cardLicense[0] : tagLicense;
    const parameters = (info.safetensors as { total?: unknown } | undefined)?.total;
    return {
      sha,
      task: info.task || undefined,
      library: (info.library_name as string | undefined) || undefined,
      license: license || undefined,
      gated: Boolean(info.gated),
      parameters: Number.isSafeInteger(parameters) ? (parameters as number) : undefined,
      downloads: info.downloads ?? 0,
      likes: info.likes ?? 0,
      files,
      bytes,
    };
  }

  /** Public, ungated models, most downloaded first, with their head sha. */
  async *mostDownloaded(): AsyncGenerator<{ name: string; sha: string }> {
    try {
      for await (const model of listModels({ sort: 'downloads', additionalFields: ['sha'], ...this.params })) {
        if (model.private || model.gated || !model.sha) continue;
        yield { name: model.name, sha: model.sha };
      }
    } catch (error) {
      throw hubError(error);
    }
  }
}

function notFound(error: unknown): boolean {
  const status = (error as { statusCode?: number }).statusCode;
  return status === 401 || status === 403 || status === 404;
}

function hubError(error: unknown): Error {
  if (error instanceof HubError) return error;
  const { statusCode, url, message } = error as { statusCode?: number; url?: string; message: string };
  if (statusCode === undefined) return error as Error;
  return new HubError(`${url ?? 'the Hub'}: HTTP ${statusCode}: ${message.split('. URL:')[0]}`);
}
