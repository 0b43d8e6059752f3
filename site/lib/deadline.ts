// One deadline over several registry reads: the transport's deadlineMs bounds each request from
// its own start, so reads made one after another could each take that long; this bounds them all.

/** Thrown by `within` when the work did not settle in time. */
export class DeadlineError extends Error {}

/**
 * `work`'s result, or a DeadlineError(`message`) once `ms` milliseconds have passed without it.
 * The work is not stopped: give its requests a deadline too (registryImage's deadlineMs), so none
 * outlives the build.
 */
export async function within<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new DeadlineError(message)), ms)));
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}
