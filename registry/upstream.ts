import type { PullThrough } from './app.ts';
import type { RegistryStore } from './store.ts';

export function createPullThrough(_store: RegistryStore, _upstream: string): PullThrough {
  throw new Error('not yet');
}
