// Pushing to registries that want credentials: the CNCF registry behind htpasswd (Basic) and
// behind a bearer-token challenge answered by a small token service in the test that signs JWTs
// with a test certificate. Credentials come from the environment or ~/.docker/config.json; wrong
// ones are one clear line and push nothing.
import assert from 'node:assert/strict';
import { createSign, X509Certificate } from 'node:crypto';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildAndPush } from './helpers/publish.ts';
import { freePort, runTool, startCncfRegistry, tempDir, tool, writeModelFolder, type CncfRegistry } from './helpers/registry.ts';

const USER = { DEPOT_REGISTRY_USERNAME: 'pusher', DEPOT_REGISTRY_PASSWORD: 's3cret' };
const WRONG = { DEPOT_REGISTRY_USERNAME: 'pusher', DEPOT_REGISTRY_PASSWORD: 'wrong' };

async function tagStatus(registry: CncfRegistry, repository: string, authorization: string): Promise<number> {
  return (await fetch(`${registry.url}/v2/${repository}/manifests/latest`, { headers: { Authorization: authorization, Accept: 'application/vnd.oci.image.index.v1+json' } })).status;
}

for (const file of ['/usr/bin/docker-registry', '/usr/bin/htpasswd', '/usr/bin/openssl', '/usr/bin/skopeo']) tool(file);

describe('pushing with credentials', () => {
  let src: string;
  before(async () => {
    src = await tempDir('auth-src');
    await writeModelFolder(src, 'auth', 1024 * 1024);
  });

  describe('basic auth (htpasswd)', () => {
    let registry: CncfRegistry;
    const basic = `Basic ${Buffer.from('pusher:s3cret').toString('base64')}`;
    before(async () => {
      const dir = await tempDir('auth-basic');
      const { stdout } = await runTool('/usr/bin/htpasswd', ['-Bbn', 'pusher', 's3cret']);
      await writeFile(path.join(dir, 'htpasswd'), stdout);
      registry = await startCncfRegistry({ dir, config: ['auth:', '  htpasswd:', '    realm: depot-test', `    path: ${path.join(dir, 'htpasswd')}`] });
    });
    after(() => registry?.stop());

    test('credentials from the environment', async () => {
      const run = await buildAndPush('Auth/Basic', src, await tempDir('auth-store'), registry.hostPort, USER);
      assert.equal(run.status, 0, run.stderr);
      assert.equal(await tagStatus(registry, 'auth/basic', basic), 200);
      const { stdout } = await runTool('/usr/bin/skopeo', ['inspect', '--raw', '--tls-verify=false', '--creds', 'pusher:s3cret', `docker://${registry.hostPort}/auth/basic:latest`]);
      assert.equal(JSON.parse(stdout).manifests.length, 2);
    });

    test('credentials from ~/.docker/config.json', async () => {
      const home = await tempDir('auth-home');
      await mkdir(path.join(home, '.docker'));
      await writeFile(path.join(home, '.docker/config.json'), JSON.stringify({ auths: { [registry.hostPort]: { auth: Buffer.from('pusher:s3cret').toString('base64') } } }));
      const run = await buildAndPush('Auth/Docker-Config', src, await tempDir('auth-store'), registry.hostPort, { HOME: home, DOCKER_CONFIG: '' });
      assert.equal(run.status, 0, run.stderr);
      assert.equal(await tagStatus(registry, 'auth/docker-config', basic), 200);
    });

    /** A home whose docker config names `helper`, and a PATH with docker-credential-depot-test on it. */
    async function helperHome(config: object): Promise<NodeJS.ProcessEnv> {
      const home = await tempDir('auth-home');
      await mkdir(path.join(home, '.docker'));
      await writeFile(path.join(home, '.docker/config.json'), JSON.stringify(config));
      const bin = await tempDir('auth-bin');
      // The credential-helper protocol: `get`, the server on stdin, JSON or "not found" on stdout.
      const script = [
        '#!/bin/sh',
        'read -r server',
        'echo "$server" >> "$HOME/asked"',
        `if [ "$1" = get ] && [ "$server" = "${registry.hostPort}" ]; then echo '{"ServerURL":"'"$server"'","Username":"pusher","Secret":"s3cret"}'; exit 0; fi`,
        'echo "credentials not found in native keychain"; exit 1',
      ].join('\n');
      await writeFile(path.join(bin, 'docker-credential-depot-test'), `${script}\n`, { mode: 0o755 });
      return { HOME: home, DOCKER_CONFIG: '', PATH: `${bin}:${process.env.PATH}` };
    }

    test('credentials from the credential helper ~/.docker/config.json names', async () => {
      for (const [image, config] of [
        ['Auth/Cred-Helpers', { credHelpers: { [registry.hostPort]: 'depot-test' } }],
        ['Auth/Creds-Store', { credsStore: 'depot-test', auths: { [registry.hostPort]: {} } }],
      ] as const) {
        const env = await helperHome(config);
        const run = await buildAndPush(image, src, await tempDir('auth-store'), registry.hostPort, env);
        assert.equal(run.status, 0, run.stderr);
        assert.equal(await tagStatus(registry, image.toLowerCase(), basic), 200);
        assert.equal((await readFile(path.join(env.HOME!, 'asked'), 'utf8')).trim(), registry.hostPort, 'the helper was asked for this registry');
      }
    });

    test('a credential helper that is not installed: one clear line, nothing pushed', async () => {
      const env = await helperHome({ credsStore: 'not-installed' });
      const run = await buildAndPush('Auth/No-Helper', src, await tempDir('auth-store'), registry.hostPort, env);
      assert.equal(run.status, 1);
      assert.match(run.stderr, /^depot-ai: docker-credential-not-installed, the credential helper .*config\.json names for 127\.0\.0\.1:\d+, is not installed \(not on PATH\)$/m);
      assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
      assert.equal(await tagStatus(registry, 'auth/no-helper', basic), 404);
    });

    test('no or wrong credentials: one clear line, nothing pushed', async () => {
      for (const env of [{ HOME: await tempDir('auth-home') }, WRONG]) {
        const run = await buildAndPush('Auth/Refused', src, await tempDir('auth-store'), registry.hostPort, env);
        assert.equal(run.status, 1);
        assert.match(run.stderr, /^depot-ai: Auth\/Refused: GET http:\/\/127\.0\.0\.1:\d+\/v2\/auth\/refused\/manifests\/latest: authentication failed/m);
        assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
      }
      assert.equal(await tagStatus(registry, 'auth/refused', basic), 404);
    });
  });

  describe('bearer token challenge', () => {
    let registry: CncfRegistry;
    let tokens: Server;
    const issued: string[] = [];
    before(async () => {
      const dir = await tempDir('auth-token');
      const key = path.join(dir, 'key.pem');
      const cert = path.join(dir, 'cert.pem');
      await runTool('/usr/bin/openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=depot-test-token']);
      const signingKey = await readFile(key, 'utf8');
      const x5c = new X509Certificate(await readFile(cert)).raw.toString('base64');
      const port = await freePort();
      tokens = createServer((req, res) => {
        const url = new URL(req.url!, 'http://x');
        if (req.headers.authorization !== `Basic ${Buffer.from('pusher:s3cret').toString('base64')}`) {
          res.writeHead(401, { 'Content-Type': 'application/json' });
          return res.end('{"details":"bad credentials"}');
        }
        const access = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).map((s) => {
          const [type, name, actions] = s.split(':');
          return { type, name, actions: actions.split(',') };
        });
        issued.push(url.searchParams.getAll('scope').join(' '));
        const now = Math.floor(Date.now() / 1000);
        const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
        const body = `${b64({ alg: 'RS256', typ: 'JWT', x5c: [x5c] })}.${b64({ iss: 'depot-test-issuer', sub: 'pusher', aud: 'depot-test', exp: now + 300, nbf: now - 10, iat: now, jti: String(Math.random()), access })}`;
        const token = `${body}.${createSign('RSA-SHA256').update(body).sign(signingKey).toString('base64url')}`;
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ token, expires_in: 300 }));
      });
      await new Promise<void>((r) => tokens.listen(port, '127.0.0.1', r));
      registry = await startCncfRegistry({
        dir,
        config: ['auth:', '  token:', `    realm: http://127.0.0.1:${port}/token`, '    service: depot-test', '    issuer: depot-test-issuer', `    rootcertbundle: ${cert}`],
      });
    });
    after(async () => {
      await registry?.stop();
      tokens?.closeAllConnections();
      await new Promise((r) => tokens?.close(r));
    });

    test('the token service grants push with the credentials', async () => {
      const run = await buildAndPush('Auth/Bearer', src, await tempDir('auth-store'), registry.hostPort, USER);
      assert.equal(run.status, 0, run.stderr);
      assert.ok(issued.some((s) => s.includes('repository:auth/bearer:pull,push')), `asked for push scope: ${issued.join(' | ')}`);
      const { stdout } = await runTool('/usr/bin/skopeo', ['inspect', '--raw', '--tls-verify=false', '--creds', 'pusher:s3cret', `docker://${registry.hostPort}/auth/bearer:latest`]);
      assert.equal(JSON.parse(stdout).manifests.length, 2);
    });

    test('wrong credentials: the token service refuses, one clear line', async () => {
      const run = await buildAndPush('Auth/Bearer-Refused', src, await tempDir('auth-store'), registry.hostPort, WRONG);
      assert.equal(run.status, 1);
      assert.match(run.stderr, /^depot-ai: Auth\/Bearer-Refused: 127\.0\.0\.1:\d+: the token service refused the credentials of "pusher" \(status 401\)$/m);
      assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
    });
  });
});
