// depot-ai serve: the read-only registry over the store, until SIGINT/SIGTERM.
import { registryCredentials } from '../client/credentials.ts';
import { DEFAULT_STORE } from '../image/layout.ts';
import { startRegistry } from '../registry/server.ts';
import { DEFAULT_TAG_TTL_MS } from '../registry/upstream.ts';
import { parseCommandArgs, UsageError } from './args.ts';

export function parsePort(raw: string): number {
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port > 65535) throw new UsageError(`--port must be a number from 0 to 65535, not "${raw}"`);
  return port;
}

export async function serveCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, {
    store: { type: 'string', default: process.env.DEPOT_STORE ?? DEFAULT_STORE },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '5000' },
    upstream: { type: 'string' },
    'tag-ttl': { type: 'string', default: String(DEFAULT_TAG_TTL_MS / 1000) },
  });
  if (positionals.length > 0) throw new UsageError(`serve takes no arguments, got "${positionals[0]}"`);
  if (values.upstream && !/^https?:\/\/[^/]+\/?$/.test(values.upstream)) {
    throw new UsageError(`--upstream must be a registry base URL such as http://127.0.0.1:5001, not "${values.upstream}"`);
  }
  const tagTtl = values['tag-ttl'];
  if (!/^\d+$/.test(tagTtl)) throw new UsageError(`--tag-ttl must be a whole number of seconds, not "${tagTtl}"`);
  const registry = await startRegistry({
    store: values.store,
    host: values.host,
    port: parsePort(values.port),
    upstream: values.upstream,
    tagTtlMs: Number(tagTtl) * 1000,
    // The upstream's credentials as build --push finds them (DEPOT_REGISTRY_USERNAME/PASSWORD for
    // the registry the operator configured, docker config); sent to the upstream's origin only.
    upstreamOptions: values.upstream ? { credentials: await registryCredentials(new URL(values.upstream).host, { configured: true }) } : undefined,
    handleSignals: true,
  });
  console.error(`registry: serving ${values.store} at ${registry.url}${values.upstream ? ` (pull-through from ${values.upstream})` : ''}`);
  await registry.closed;
  return 0;
}
