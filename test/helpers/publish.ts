// The publishing command as tests run it: build one model from a folder and push it.
import { depotAiAsync } from './cli.ts';

/** `depot-ai build NAME --from DIR --push TARGET --insecure --keep` (into the store, then pushed; a folder has no revision tag), with 1 MiB upload chunks and quick retries. */
export function buildAndPush(name: string, from: string, store: string, target: string, env: NodeJS.ProcessEnv = {}) {
  return depotAiAsync(['build', name, '--from', from, '--store', store, '--push', target, '--insecure', '--keep'], {
    DEPOT_UPLOAD_CHUNK_BYTES: String(1024 * 1024),
    DEPOT_RETRY_DELAY_MS: '20',
    SOURCE_DATE_EPOCH: '0',
    ...env,
  });
}
