// Registry authentication: the answer to a registry's `WWW-Authenticate` challenge — Basic (send
// the credentials) or Bearer (fetch a token from the realm for the scope, with the credentials when
// there are any). Runtime-neutral (also bundled into the Worker); where credentials come from on a
// machine (environment, ~/.docker/config.json, credential helpers) is credentials.ts.
import { readBounded } from './body.ts';

export interface Credentials {
  username: string;
  password: string;
}

export class AuthError extends Error {}

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
