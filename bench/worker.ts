// `npm run bench` (worker part): the same image from the registry Worker in workerd (Miniflare 3,
// R2 simulated on disk), from `depot-ai serve` and from the CNCF registry, with the same load tool:
// manifest GET, 4 KiB range GET and full-blob GET. Ratios are against the CNCF registry in this run.
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRegistry } from '../registry/server.ts';
import { makeTestImage, pushLayout, startCncfRegistry, tempDir } from '../test/helpers/registry.ts';
import { startTestWorker } from '../test/helpers/worker.ts';
import { INDEX_ACCEPT, load, WRK, type Scenario } from './registry.ts';

export async function benchWorker(options: { duration?: number; weights?: number } = {}): Promise<void> {
  const duration = options.duration ?? 5;
  if (!existsSync('/usr/bin/docker-registry') || !existsSync('/usr/bin/skopeo')) {
    console.log('worker bench: skipped (docker-registry or skopeo is not installed; run node scripts/ensure-tools.js)');
    return;
  }
  const dir = await tempDir('bench-worker');
  const image = await makeTestImage({ name: 'bench/model', tag: 'v1', weights: options.weights ?? 32 * 1024 * 1024, store: path.join(dir, 'store') });
  const serve = await startRegistry({ store: image.store, host: '127.0.0.1', port: 0, log: false });
  const cncf = await startCncfRegistry({ dir: path.join(dir, 'cncf') });
  const worker = await startTestWorker({ store: image.store });
  try {
    await pushLayout(image.store, image.name, image.tag, cncf.hostPort);
    const blob = `/v2/${image.name}/blobs/${image.layer}`;
    const scenarios: Omit<Scenario, 'target'>[] = [
      { label: 'manifest GET', unit: 'req/s', connections: 16, value: (l) => l.requestsPerSec, path: `/v2/${image.name}/manifests/${image.tag}`, headers: { Accept: INDEX_ACCEPT } },
      { label: '4 KiB range GET', unit: 'req/s', connections: 16, value: (l) => l.requestsPerSec, path: blob, rangesOf: image.layerSize },
      { label: 'full-blob GET', unit: 'MB/s', connections: 4, value: (l) => l.bytesPerSec / 1e6, path: blob },
    ];
    const servers = [['Worker', worker.url], ['serve', serve.url], ['CNCF', cncf.url]] as const;
    console.log(
      `worker: same image (layer ${(image.layerSize / 2 ** 20).toFixed(1)} MiB) from the Worker (workerd + R2 on disk), ` +
        `depot-ai serve and the CNCF registry; ${existsSync(WRK) ? 'wrk -t1' : 'autocannon'}, ${duration} s each`,
    );
    const rows: string[][] = [['', 'Worker', 'serve', 'CNCF', 'Worker/CNCF', 'Worker/serve', 'errors']];
    for (const s of scenarios) {
      const values: number[] = [];
      let errors = 0;
      for (const [, url] of servers) {
        const result = await load(url, { ...s, target: 0 }, duration, dir);
        values.push(s.value(result));
        errors += result.errors;
      }
      const digits = s.unit === 'MB/s' ? 1 : 0;
      rows.push([`${s.label} (${s.unit})`, ...values.map((v) => v.toFixed(digits)), `${(values[0] / values[2]).toFixed(2)}x`, `${(values[0] / values[1]).toFixed(2)}x`, String(errors)]);
    }
    const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    for (const row of rows) console.log('  ' + row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  '));
  } finally {
    await worker.close();
    await serve.close();
    await cncf.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await benchWorker();
}
