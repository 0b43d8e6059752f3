// Lazy-pull benchmark through the real stargz snapshotter (containerd 1.6 + tools/stargz-snapshotter,
// default multi-range fetches, prefetch and background fetch off): for the ~350 MB test image,
// the layer bytes each step fetches (rpull, then each file read through the mount) against the
// layer size, and the time to the first byte of config.json after rpull; from `serve` and, as
// the reference in the same run, from the CNCF registry (Go's http.ServeContent) holding the same image.
// Then `build --prefetch small` against the default layer with the snapshotter's prefetch on:
// bytes and time to the first byte of config.json, as ratios.
import { open, rm } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import path from 'node:path';
import { startContainerd, type SnapshotterOptions } from '../test/helpers/containerd.ts';
import { buildLazyImage, fileSha256, layerBytesSent, MEDIUM, SMALL, type LazyImage } from '../test/helpers/lazy.ts';
import { pushLayout, startCncfRegistry, startTestRegistry, type TestRegistry } from '../test/helpers/registry.ts';

const RUNS = 3;

interface Steps {
  rpull: number;
  /** rpull and mounting a view, in ms (with prefetch on, the snapshotter prefetches meanwhile). */
  pullMs: number;
  firstByteMs: number;
  files: Record<string, number>;
}

/**
 * Bytes fetched per step through a fresh containerd (snapshotter `options`); `sent` counts what
 * the registry sent so far.
 */
async function measure(image: LazyImage, hostPort: string, sent: () => Promise<number>, options: SnapshotterOptions = {}): Promise<Steps> {
  const containerd = await startContainerd(options);
  try {
    let last = await sent();
    const step = async () => {
      const now = await sent();
      const delta = now - last;
      last = now;
      return delta;
    };
    const pullStarted = performance.now();
    await containerd.rpull(`${hostPort}/${image.name}:${image.tag}`);
    const root = await containerd.mountView(image.diffId);
    const pullMs = performance.now() - pullStarted;
    const rpull = await step();
    const started = performance.now();
    const handle = await open(path.join(root, 'config.json'));
    await handle.read(Buffer.alloc(1), 0, 1, 0);
    const firstByteMs = performance.now() - started;
    await handle.close();
    const files: Record<string, number> = { 'config.json': await step() };
    for (const file of [...SMALL.slice(1), MEDIUM]) {
      if ((await fileSha256(path.join(root, file))) !== image.sha256[file]) throw new Error(`${file}: wrong bytes through the mount`);
      files[file] = await step();
    }
    return { rpull, pullMs, firstByteMs, files };
  } finally {
    await containerd.close();
  }
}

/** Each figure's median over RUNS fresh pulls (the snapshotter's fetches vary from run to run). */
async function median(pull: () => Promise<Steps>): Promise<Steps> {
  const runs: Steps[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(await pull());
  const mid = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];
  return {
    rpull: mid(runs.map((r) => r.rpull)),
    pullMs: mid(runs.map((r) => r.pullMs)),
    firstByteMs: mid(runs.map((r) => r.firstByteMs)),
    files: Object.fromEntries(Object.keys(runs[0].files).map((f) => [f, mid(runs.map((r) => r.files[f]))])),
  };
}

/**
 * A TCP proxy that counts the bytes a registry sends back (headers included: a few hundred bytes
 * a request), for registries whose log we cannot read.
 */
async function countingProxy(target: string): Promise<{ hostPort: string; sent(): Promise<number>; close(): Promise<void> }> {
  const { port } = new URL(target);
  let bytes = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(port), '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    upstream.on('data', (chunk: Buffer) => (bytes += chunk.length));
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    hostPort: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    sent: async () => bytes,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

export async function benchLazy(): Promise<void> {
  const image = await buildLazyImage();
  const cncf = await startCncfRegistry();
  let serve: TestRegistry | undefined;
  let proxy: Awaited<ReturnType<typeof countingProxy>> | undefined;
  try {
    serve = await startTestRegistry({ store: image.store });
    const ours = await median(() => measure(image, serve!.hostPort, () => layerBytesSent(serve!, image.layer)));
    await pushLayout(image.store, image.name, image.tag, cncf.hostPort);
    proxy = await countingProxy(cncf.url);
    const reference = await median(() => measure(image, proxy!.hostPort, proxy!.sent));
    console.log(`\n## Lazy pull through the stargz snapshotter (${image.layerSize} B layer; multi-range fetches, no prefetch/background fetch; median of ${RUNS})`);
    console.log('step                           serve B   of layer    CNCF registry B   ratio   compressed extent B');
    const row = (name: string, bytes: number, ref: number, extent: number) =>
      console.log(
        `${name.padEnd(28)}${String(bytes).padStart(10)}${`${((100 * bytes) / image.layerSize).toFixed(3)}%`.padStart(11)}${String(ref).padStart(19)}${(ref === 0 ? '-' : (bytes / ref).toFixed(2)).padStart(8)}${String(extent).padStart(22)}`,
      );
    row('rpull (footer + TOC)', ours.rpull, reference.rpull, image.tocAndFooter);
    for (const [file, bytes] of Object.entries(ours.files)) row(`read ${file}`, bytes, reference.files[file], image.compressed[file]);
    console.log(`time to first byte of config.json after rpull: serve ${ours.firstByteMs.toFixed(1)} ms, CNCF registry ${reference.firstByteMs.toFixed(1)} ms (ratio ${(ours.firstByteMs / reference.firstByteMs).toFixed(2)})`);
    console.log('targets: rpull <= footer + TOC in 50 kB blob chunks; config.json <= 64 KiB; the 40 MiB file <= 1.5x its compressed extent (CNCF registry: manifests and headers included)');
    await benchPrefetch(image, serve);
  } finally {
    await proxy?.close();
    await serve?.close();
    await cncf.stop();
    await rm(cncf.dir, { recursive: true, force: true });
    await rm(image.store, { recursive: true, force: true });
  }
}

/**
 * `build --prefetch small` against the default layer, both from serve, with the snapshotter's
 * prefetch on (as it runs by default): bytes and time of rpull + mount (the prefetch happens
 * there), then the time to the first byte of config.json and the bytes its read costs.
 */
async function benchPrefetch(plain: LazyImage, plainServe: TestRegistry): Promise<void> {
  const image = await buildLazyImage(undefined, plain.name, ['--prefetch', 'small']);
  const serve = await startTestRegistry({ store: image.store });
  try {
    const on = { prefetch: true };
    const without = await median(() => measure(plain, plainServe.hostPort, () => layerBytesSent(plainServe, plain.layer), on));
    const withPrefetch = await median(() => measure(image, serve.hostPort, () => layerBytesSent(serve, image.layer), on));
    console.log(`\n## Lazy pull with \`build --prefetch small\` (snapshotter prefetch on; default layer vs prefetch layer; median of ${RUNS})`);
    console.log(`${'figure'.padEnd(42)}      default   --prefetch small    ratio`);
    const row = (name: string, a: number, b: number, unit: string) =>
      console.log(`${name.padEnd(42)}${`${a.toFixed(unit === 'B' ? 0 : 1)} ${unit}`.padStart(13)}${`${b.toFixed(unit === 'B' ? 0 : 1)} ${unit}`.padStart(19)}${(a === 0 ? '-' : (b / a).toFixed(2)).padStart(9)}`);
    row('rpull + mount: layer bytes', without.rpull, withPrefetch.rpull, 'B');
    row('rpull + mount: time', without.pullMs, withPrefetch.pullMs, 'ms');
    row('first byte of config.json after mount', without.firstByteMs, withPrefetch.firstByteMs, 'ms');
    row('read config.json: layer bytes', without.files['config.json'], withPrefetch.files['config.json'], 'B');
    for (const file of SMALL.slice(1)) row(`read ${file}: layer bytes`, without.files[file], withPrefetch.files[file], 'B');
    row('rpull start to first byte of config', without.pullMs + without.firstByteMs, withPrefetch.pullMs + withPrefetch.firstByteMs, 'ms');
  } finally {
    await serve.close();
    await rm(image.store, { recursive: true, force: true });
  }
}
