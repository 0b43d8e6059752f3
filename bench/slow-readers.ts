// `npm run bench` (slow-readers part): 1,500 clients each ask for a 9 MiB blob (whole, then two
// ranges of it: a multipart/byteranges answer) and never read it.
// Measured for depot-ai `serve` and the CNCF registry, each in its own process: how much resident
// memory the load adds, and how long a normal manifest GET takes while it lasts. Then the
// pull-through's share: stalled first clients of different uncached blobs.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { CLI, startProcess } from '../test/helpers/cli.ts';
import { startLyingServer } from '../test/helpers/lying-server.ts';
import { makeTestImage, pushLayout, raw, startCncfRegistry, tempDir } from '../test/helpers/registry.ts';
import { residentBytes, startSlowReaders, type SlowReaders } from '../test/helpers/slow-readers.ts';

const INDEX_ACCEPT = 'application/vnd.oci.image.index.v1+json';
const MiB = 2 ** 20;

interface Server {
  pid: number;
  port: number;
  url: string;
}

interface Outcome {
  /** RSS growth under load, bytes. */
  growth: number;
  /** Manifest GET latencies under load, ms, sorted. */
  latencies: number[];
}

async function underLoad(server: Server, blob: string, manifest: string, clients: number, range?: string): Promise<Outcome> {
  await raw(server.url, manifest, { headers: { Accept: INDEX_ACCEPT } }); // warm
  const before = await residentBytes(server.pid);
  const readers = await startSlowReaders(server.port, blob, clients, range);
  try {
    // Let the writes stall (the kernel buffers fill), keeping the highest RSS seen.
    let peak = 0;
    for (let i = 0; i < 20; i++) {
      peak = Math.max(peak, await residentBytes(server.pid));
      await new Promise((r) => setTimeout(r, 100));
    }
    const latencies: number[] = [];
    for (let i = 0; i < 20; i++) {
      const start = performance.now();
      const res = await raw(server.url, manifest, { headers: { Accept: INDEX_ACCEPT } });
      if (res.status !== 200) throw new Error(`manifest GET under load: ${res.status}`);
      latencies.push(performance.now() - start);
      peak = Math.max(peak, await residentBytes(server.pid));
    }
    return { growth: peak - before, latencies: latencies.sort((a, b) => a - b) };
  } finally {
    readers.close();
  }
}

export async function benchSlowReaders(clients = 1500): Promise<void> {
  if (!existsSync('/usr/bin/docker-registry') || !existsSync('/usr/bin/skopeo')) {
    console.log('slow-readers bench: skipped (docker-registry or skopeo missing; run node scripts/ensure-tools.js)');
    return;
  }
  const dir = await tempDir('bench-slow');
  try {
    const image = await makeTestImage({ name: 'bench/slow', tag: 'v1', weights: 9 * MiB, store: path.join(dir, 'store') });
    const shapes: [string, string | undefined][] = [
      ['whole blob', undefined],
      ['two ranges, multipart', 'bytes=0-3000000,3000002-8000000'],
    ];
    for (const [shape, range] of shapes) {
      console.log(`slow readers: ${clients} clients GET a ${(image.layerSize / MiB).toFixed(1)} MiB blob (${shape}) and never read`);
      // Fresh servers for each shape: memory the previous load left resident would hide growth.
      const ours = startProcess([CLI, 'serve', '--store', image.store, '--port', '0']);
      const cncf = await startCncfRegistry({ dir: path.join(dir, `cncf-${shapes.findIndex(([s]) => s === shape)}`) });
      try {
        const [, url, port] = await ours.waitFor(/at (http:\/\/127\.0\.0\.1:(\d+))/);
        await pushLayout(image.store, image.name, image.tag, cncf.hostPort);
        const blob = `/v2/${image.name}/blobs/${image.layer}`;
        const manifest = `/v2/${image.name}/manifests/${image.tag}`;
        const servers: [string, Server][] = [
          ['depot-ai', { pid: ours.child.pid!, port: Number(port), url }],
          ['CNCF', { pid: cncf.process.pid!, port: Number(cncf.hostPort.split(':')[1]), url: cncf.url }],
        ];
        const results: Outcome[] = [];
        for (const [label, server] of servers) {
          const r = await underLoad(server, blob, manifest, clients, range);
          results.push(r);
          const p50 = r.latencies[r.latencies.length >> 1];
          console.log(
            `  ${label.padEnd(8)}  RSS +${(r.growth / MiB).toFixed(0)} MiB  manifest GET under load p50 ${p50.toFixed(1)} ms, max ${r.latencies.at(-1)!.toFixed(1)} ms`,
          );
        }
        const ratio = results[0].growth / Math.max(results[1].growth, MiB);
        console.log(`  RSS growth depot-ai/CNCF (${shape}): ${ratio.toFixed(2)}x (target <= 4x) ${ratio <= 4 ? 'ok' : 'ABOVE TARGET'}`);
      } finally {
        ours.child.kill('SIGTERM');
        await ours.exited;
        await cncf.stop();
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The pull-through's relay window: `clients` clients each GET a different `blobMiB` blob the cache
 * does not hold, from an upstream that sends it at once, and never read. Each fill reads on into
 * its temp file; what stays in memory is what each fill queues for its stalled first client
 * (RELAY_WINDOW in registry/upstream.ts), shown per client. The blobs are large because loopback
 * sockets absorb up to tcp_rmem's maximum (32 MiB here) before the server's writes stall.
 */
export async function benchPullThroughReaders(clients = 20, blobMiB = 48): Promise<void> {
  const size = blobMiB * MiB;
  const chunks = Array.from({ length: clients }, (_, i) => Buffer.alloc(64 * 1024, i));
  const digests = chunks.map((chunk) => {
    const hash = createHash('sha256');
    for (let sent = 0; sent < size; sent += chunk.length) hash.update(chunk);
    return `sha256:${hash.digest('hex')}`;
  });
  const upstream = await startLyingServer((req, res) => {
    const i = digests.findIndex((d) => req.url?.endsWith(d));
    if (i < 0) return void res.writeHead(req.url === '/v2/' ? 200 : 404).end();
    res.writeHead(200, { 'Content-Length': String(size) });
    if (req.method === 'HEAD') return void res.end();
    let sent = 0;
    const go = () => {
      while (sent < size) {
        sent += chunks[i].length;
        if (!res.write(chunks[i])) return void res.once('drain', go);
      }
      res.end();
    };
    go();
  });
  const dir = await tempDir('bench-pull-slow');
  const ours = startProcess([CLI, 'serve', '--store', dir, '--port', '0', '--upstream', upstream.url]);
  const readers: SlowReaders[] = [];
  try {
    const [, , port] = await ours.waitFor(/at (http:\/\/127\.0\.0\.1:(\d+))/);
    const pid = ours.child.pid!;
    const before = await residentBytes(pid);
    for (const digest of digests) readers.push(await startSlowReaders(Number(port), `/v2/bench/pull/blobs/${digest}`, 1));
    let peak = 0;
    for (let i = 0; i < 50; i++) {
      peak = Math.max(peak, await residentBytes(pid));
      await new Promise((r) => setTimeout(r, 100));
    }
    const growth = peak - before;
    console.log(`pull-through slow readers: ${clients} clients GET different uncached ${blobMiB} MiB blobs and never read`);
    console.log(`  depot-ai  RSS +${(growth / MiB).toFixed(0)} MiB, ${(growth / clients / MiB).toFixed(2)} MiB per stalled client (relay window 1 MiB)`);
  } finally {
    for (const r of readers) r.close();
    ours.child.kill('SIGTERM');
    await ours.exited;
    await upstream.close();
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await benchSlowReaders(Number(process.argv[2] ?? 1500));
  await benchPullThroughReaders();
}
