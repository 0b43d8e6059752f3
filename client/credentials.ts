// Credentials for a registry on this machine: the environment, else ~/.docker/config.json and the
// credential helpers it names (Node only: files and child processes; the Worker gets its upstream
// credentials from secrets instead).
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { AuthError, type Credentials } from './auth.ts';

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

export interface CredentialOptions {
  env?: NodeJS.ProcessEnv;
  /**
   * `registry` is the one the operator configured (the `build --push` target, `serve --upstream`),
   * not one read from a user's image reference (`cp`, `verify`).
   */
  configured?: boolean;
}

/**
 * Credentials for `registry` (`host[:port]`): DEPOT_REGISTRY_USERNAME + DEPOT_REGISTRY_PASSWORD
 * when they are meant for it, else what $DOCKER_CONFIG/config.json (default ~/.docker/config.json)
 * holds for it — through its credential helper (`credHelpers`, then `credsStore`) or in `auths` —
 * else none (anonymous). The environment's pair belongs to the configured registry only: a
 * registry that some image reference names never gets it just by asking for Basic auth (the docker
 * config is per host, so it applies everywhere).
 */
export async function registryCredentials(registry: string, { env = process.env, configured = false }: CredentialOptions = {}): Promise<Credentials | undefined> {
  if (configured && env.DEPOT_REGISTRY_USERNAME && env.DEPOT_REGISTRY_PASSWORD) return { username: env.DEPOT_REGISTRY_USERNAME, password: env.DEPOT_REGISTRY_PASSWORD };
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
