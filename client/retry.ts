// Retries with exponential backoff, and a small worker pool: the two ways the builder talks to
// the network (Hugging Face downloads, registry uploads) stay patient and bounded.

export interface RetryOptions {
  /** Attempts in all, the first included (default 5). */
  attempts?: number;
  /** Delay before the first retry; doubles each time (default 500 ms, DEPOT_RETRY_DELAY_MS). */
  delayMs?: number;
  /** Whether an error is worth another attempt (default: every error). */
  retryable?: (error: unknown) => boolean;
  onRetry?: (error: unknown, attempt: number) => void;
}

export async function withRetries<T>(work: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const attempts = options.attempts ?? 5;
  const delay = options.delayMs ?? Number(process.env.DEPOT_RETRY_DELAY_MS ?? 500);
  for (let attempt = 1; ; attempt++) {
    try {
      return await work(attempt);
    } catch (error) {
      if (attempt >= attempts || !(options.retryable?.(error) ?? true)) throw error;
      options.onRetry?.(error, attempt);
      await new Promise((resolve) => setTimeout(resolve, delay * 2 ** (attempt - 1)));
    }
  }
}

/** Run `work` on every item, at most `limit` at a time; after a failure no new item starts, and the first error is thrown once the running ones settle. */
export async function runConcurrently<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const item = items[next++];
      try {
        await work(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure) throw failure.error;
}

/** Network trouble that another attempt may get past: resets, refused or timed-out connections, truncated bodies. */
export function isTransientNetworkError(error: unknown): boolean {
  const seen = new Set<unknown>();
  for (let e = error as (Error & { code?: string; cause?: unknown }) | undefined; e && !seen.has(e); e = e.cause as typeof e) {
    seen.add(e);
    if (typeof e.code === 'string' && /^(ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|UND_ERR_SOCKET|UND_ERR_CONNECT_TIMEOUT|UND_ERR_CLOSED|ECONNABORTED)$/.test(e.code)) return true;
    if (e instanceof TypeError && /fetch failed|terminated/.test(e.message)) return true;
    if (/other side closed|socket hang up|terminated/i.test(e.message ?? '')) return true;
  }
  return false;
}
