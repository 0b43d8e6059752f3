// Registry authentication: credentials from the environment or ~/.docker/config.json, and the
// answer to a registry's `WWW-Authenticate` challenge — Basic (send the credentials) or Bearer
// (fetch a token from the realm for the scope, with the credentials when there are any).
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export interface Credentials {
  username: string;
  password: string;
}

/**
 * Credentials for `registry`: DEPOT_REGISTRY_USERNAME + DEPOT_REGISTRY_PASSWORD, else the `auths`
 * entry of $DOCKER_CONFIG/config.json (default ~/.docker/config.json), else none (anonymous).
 */
export async function registryCredentials(registry: string, env: NodeJS.ProcessEnv = process.env): Promise<Credentials | undefined> {
  if (env.DEPOT_REGISTRY_USERNAME && env.DEPOT_REGISTRY_PASSWORD) return { username: env.DEPOT_REGISTRY_USERNAME, password: env.DEPOT_REGISTRY_PASSWORD };
  const file = path.join(env.DOCKER_CONFIG || path.join(env.HOME || os.homedir(), '.docker'), 'config.json');
  let config: { auths?: Record<string, { auth?: string; username?: string; password?: string }> };
  try {
    config = JSON.parse(await readFile(file, 'utf8'));
  } catch {
    return undefined;
  }
  const hosts = registry === 'docker.io' ? ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io'] : [registry, `https://${registry}`, `http://${registry}`];
  for (const host of hosts) {
    const entry = config.auths?.[host] ?? config.auths?.[`${host}/`];
    if (entry?.username && entry.password) return { username: entry.username, password: entry.password };
    if (entry?.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    }
  }
  return undefined;
}

export class AuthError extends Error {}

/** Holds the Authorization header for one registry and renews it when challenged. */
export class Authenticator {
  private header: string | undefined;

  constructor(
    readonly registry: string,
    private readonly credentials?: Credentials,
  ) {}

  get authorization(): string | undefined {
    return this.header;
  }

  /**
   * Answer the 401 `challenge` for `scope` (e.g. `repository:org/model:pull,push`). Returns false
   * when there is nothing new to try (no challenge we speak, or Basic without credentials).
   */
  async answer(challenge: Response, scope?: string): Promise<boolean> {
    const header = challenge.headers.get('www-authenticate') ?? '';
    await challenge.body?.cancel();
    const basic = this.credentials && `Basic ${Buffer.from(`${this.credentials.username}:${this.credentials.password}`).toString('base64')}`;
    if (/^Basic\b/i.test(header)) {
      if (!basic || this.header === basic) return false;
      this.header = basic;
      return true;
    }
    if (!/^Bearer\b/i.test(header)) return false;
    const params = Object.fromEntries([...header.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1].toLowerCase(), m[2]]));
    if (!params.realm) return false;
    const url = new URL(params.realm);
    if (params.service) url.searchParams.set('service', params.service);
    for (const s of new Set([params.scope, scope].filter(Boolean))) url.searchParams.append('scope', s!);
    let response: Response;
    try {
      response = await fetch(url, basic ? { headers: { Authorization: basic } } : {});
    } catch (error) {
      throw new AuthError(`cannot reach the token service ${url.origin} of ${this.registry}: ${(error as Error & { cause?: Error }).cause?.message ?? (error as Error).message}`);
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new AuthError(`${this.registry}: the token service refused ${this.credentials ? `the credentials of "${this.credentials.username}"` : 'anonymous access'} (status ${response.status})`);
    }
    const body = (await response.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token || this.header === `Bearer ${token}`) return false;
    this.header = `Bearer ${token}`;
    return true;
  }
}
