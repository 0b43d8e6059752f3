// The registry Worker in workerd (Miniflare 3, R2 on disk in a temp folder) for the tests.
import { rm } from 'node:fs/promises';
import { startWorker, type RunningWorker } from '../../scripts/worker.ts';
import { loadStore } from '../../scripts/worker-load.ts';
import { tempDir } from './registry.ts';

export interface TestWorker extends RunningWorker {
  r2Dir: string;
}

/** Start the Worker on a free port; `store` is copied into its bucket first, `bindings` override wrangler.toml's vars. */
export async function startTestWorker(options: { store?: string; bindings?: Record<string, string> } = {}): Promise<TestWorker> {
  const r2Dir = await tempDir('r2');
  const worker = await startWorker({ port: 0, r2Dir, bindings: { UPSTREAM: '', ...options.bindings } });
  try {
    if (options.store) await loadStore(options.store, worker.bucket);
  } catch (error) {
    await worker.close();
    throw error;
  }
  return {
    ...worker,
    r2Dir,
    async close() {
      await worker.close();
      await rm(r2Dir, { recursive: true, force: true });
    },
  };
}
