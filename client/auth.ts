// Registry authentication: credentials from the environment or ~/.docker/config.json (and the
// credential helpers it names), and the answer to a registry's `WWW-Authenticate` challenge —
// Basic (send the credentials) or Bearer (fetch a token from the realm for the scope, with the
// credentials when there are any).
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readBounded } from './body.ts';

export interface Credentials {
  username: string;
  password: string;
}

export class AuthError extends Error {}

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

/**
 * Credentials for `registry`: DEPOT_REGISTRY_USERNAME + DEPOT_REGISTRY_PASSWORD, else what
 * $DOCKER_CONFIG/config.json (default ~/.docker/config.json) holds for it — through its credential
 * helper (`credHelpers`, then `credsStore`) or in `auths` — else none (anonymous).
 */
export async function registryCredentials(registry: string, env: NodeJS.ProcessEnv = process.env): Promise<Credentials | undefined> {
  if (env.DEPOT_REGISTRY_USERNAME && env.DEPOT_REGISTRY_PASSWORD) return { username: env.DEPOT_REGISTRY_USERNAME, password: env.DEPOT_REGISTRY_PASSWORD };
  const file = path.join(env.DOCKER_CONFIG || path.join(env.HOME || os.homedir(), '.docker'), 'config.json');
  let config: DockerConfig;
  try {
    config = JSON.parse(await readFile(file, 'utf8'));
  } catch {
    return undefined;
  }
  const helper = config.credHelpers?.[registry] ?? config.credsStore;
  const server = registry === 'docker.io' ? 'https://index.docker.io/v1/' : registry;
  return (helper && (await helperCredentials(helper, server, file, env))) || authsCredentials(config, registry);
}

function authsCredentials(config: DockerConfig, registry: string): Credentials | undefined {
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

/**
 * Docker's credential-helper protocol: `docker-credential-<helper> get` with the server on stdin
 * answers `{"Username", "Secret"}`, or fails saying it has none (then: anonymous).
 */
async function helperCredentials(helper: string, server: string, configFile: string, env: NodeJS.ProcessEnv): Promise<Credentials | undefined> {
  const program = `docker-credential-${helper}`;
  const { code, stdout, error } = await new Promise<{ code: number | null; stdout: string; error?: NodeJS.ErrnoException }>((resolve) => {
    const child = spawn(program, ['get'], { env, stdio: ['pipe', 'pipe', 'ignore'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.once('error', (error: NodeJS.ErrnoException) => resolve({ code: null, stdout, error }));
    child.once('close', (code) => resolve({ code, stdout }));
    child.stdin.on('error', () => {}); // a helper that exits without reading its input
    child.stdin.end(server);
  });
  if (error) {
    const why = error.code === 'ENOENT' ? 'is not installed (not on PATH)' : `cannot run: ${error.message}`;
    throw new AuthError(`${program}, the credential helper ${configFile} names for ${server}, ${why}`);
  }
  if (code !== 0) {
    if (/credentials not found/i.test(stdout)) return undefined;
    throw new AuthError(`${program} get ${server} failed (exit ${code}): ${stdout.trim().split('\n')[0] || 'no output'}`);
  }
  try {
    const { Username, Secret } = JSON.parse(stdout) as { Username?: string; Secret?: string };
    if (Username && Secret) return { username: Username, password: Secret };
  } catch {
    // fall through to the error below
  }
  throw new AuthError(`${program} get ${server} answered something that is not {"Username", "Secret"} JSON`);
}

/** The token service's answer: fetch `url`, sending `authorization` to the realm's origin only. */
export type TokenFetch = (url: URL, authorization: string | undefined) => Promise<Response>;

const MAX_TOKEN_RESPONSE = 1 << 20;

/**
 * The Authorization header for one registry, per scope: Basic once the registry asks for it, or a
 * Bearer token per scope (`repository:org/model:pull,push`) from the realm its challenge names
 * (Distribution token spec, https://distribution.github.io/distribution/spec/auth/token/).
 * Credentials are only ever given to the transport, which sends them to the registry's origin;
 * here they go to the token realm only.
 */
export class Authenticator {
  private basicChallenged = false;
  private readonly tokens = new Map<string, string>();

  constructor(
    readonly registry: string,
    private readonly credentials?: Credentials,
  ) {}

  private get basic(): string | undefined {
    return this.credentials && `Basic ${Buffer.from(`${this.credentials.username}:${this.credentials.password}`).toString('base64')}`;
  }

  /** The header for a request needing `scope` ('' for none), or undefined (anonymous so far). */
  authorization(scope: string): string | undefined {
    return this.tokens.get(scope) ?? (this.basicChallenged ? this.basic : undefined);
  }

  /**
   * Answer the 401 `challenge` for `scope`. Returns false when there is nothing new to try (no
   * challenge we speak, Basic without credentials, or the same token again). Throws AuthError
   * when the token service cannot be reached or refuses.
   */
  async answer(challenge: Response, scope: string, fetchToken: TokenFetch): Promise<boolean> {
    const header = challenge.headers.get('www-authenticate') ?? '';
    await challenge.body?.cancel().catch(() => {});
    const before = this.authorization(scope);
    if (/^Basic\b/i.test(header)) {
      if (!this.basic || before === this.basic) return false;
      this.basicChallenged = true;
      return true;
    }
    if (!/^Bearer\b/i.test(header)) return false;
    const params = Object.fromEntries([...header.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1].toLowerCase(), m[2]]));
    let url: URL;
    try {
      url = new URL(params.realm);
    } catch {
      return false;
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return false;
    if (params.service) url.searchParams.set('service', params.service);
    for (const s of new Set([params.scope, ...scope.split(' ')].filter(Boolean))) url.searchParams.append('scope', s);
    let response: Response;
    try {
      response = await fetchToken(url, this.basic);
    } catch (error) {
      throw new AuthError(`cannot reach the token service ${url.origin} of ${this.registry}: ${(error as Error & { cause?: Error }).cause?.message ?? (error as Error).message}`);
    }
    if (!response.ok) {
      await response.body?.cancel().catch(() => {});
      throw new AuthError(`${this.registry}: the token service refused ${this.credentials ? `the credentials of "${this.credentials.username}"` : 'anonymous access'} (status ${response.status})`);
    }
    let token: unknown;
    try {
      const body = JSON.parse((await readBounded(response, MAX_TOKEN_RESPONSE, 'the token')).toString('utf8')) as { token?: unknown; access_token?: unknown };
      token = body.token ?? body.access_token;
    } catch {
      throw new AuthError(`${this.registry}: the token service ${url.origin} answered something that is not a token (JSON up to 1 MiB)`);
    }
    if (typeof token !== 'string' || !token || before === `Bearer ${token}`) return false;
    this.tokens.set(scope, `Bearer ${token}`);
    return true;
  }
}
