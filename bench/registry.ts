// `npm run bench` (registry part): the same image served by our registry and by the CNCF
// Distribution registry on this machine, measured with the same load tool, connections and
// duration: full-blob GET throughput, 4 KiB range GETs per second, manifest GETs per second.
import { execFile } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import autocannon from 'autocannon';
import { startRegistry } from '../registry/server.ts';
import { makeTestImage, pushLayout, startCncfRegistry, tempDir } from '../test/helpers/registry.ts';

const run = promisify(execFile);
export const WRK = '/usr/bin/wrk';
export const INDEX_ACCEPT = 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json';

export interface RegistryBenchOptions {
  /** Seconds per measurement (default 5). */
  duration?: number;
  /** Rounds per server; the best round counts, to damp noise from other work on the machine (default 2). */
  rounds?: number;
  /** Size of the model weights (the layer is about this big; default 64 MiB). */
  weights?: number;
}

export interface Load {
  requestsPerSec: number;
  bytesPerSec: number;
  errors: number;
}

export interface Scenario {
  label: string;
  unit: string;
  connections: number;
  target: number;
  value: (l: Load) => number;
  path: string;
  headers?: Record<string, string>;
  /** 4 KiB ranges at random offsets below this size. */
  rangesOf?: number;
}

/** wrk when installed (C, so the load tool is not the bottleneck), autocannon otherwise. */
export async function load(base: string, s: Scenario, duration: number, dir: string): Promise<Load> {
  if (existsSync(WRK)) {
    const script = path.join(dir, `wrk-${Math.random().toString(36).slice(2)}.lua`);
    const headers = Object.entries(s.headers ?? {}).map(([k, v]) => `["${k}"] = "${v}"`);
    await writeFile(
      script,
      s.rangesOf
        ? [
            'math.randomseed(42)',
            `local blocks = ${Math.floor((s.rangesOf - 4096) / 4096)}`,
            'request = function()',
            '  local off = math.random(0, blocks) * 4096',
            `  return wrk.format("GET", "${s.path}", { ["Range"] = "bytes=" .. off .. "-" .. (off + 4095) })`,
            'end',
          ].join('\n')
        : `request = function() return wrk.format("GET", "${s.path}", { ${headers.join(', ')} }) end`,
    );
    const { stdout } = await run(WRK, ['-t1', `-c${s.connections}`, `-d${duration}s`, '-s', script, base]);
    const num = (re: RegExp) => Number(re.exec(stdout)?.[1] ?? 0);
    const transfer = /Transfer\/sec:\s+([\d.]+)([KMG]?B)/.exec(stdout);
    const scale: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };
    const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
    return {
      requestsPerSec: num(/Requests\/sec:\s+([\d.]+)/),
      bytesPerSec: transfer ? Number(transfer[1]) * scale[transfer[2]] : 0,
      errors: num(/Non-2xx or 3xx responses: (\d+)/) + (socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0),
    };
  }
  const requests: autocannon.Request[] = s.rangesOf
    ? Array.from({ length: 64 }, (_, i) => {
        const off = Math.floor(((s.rangesOf! - 4096) / 4096) * ((i * 0.618) % 1)) * 4096;
        return { method: 'GET' as const, path: s.path, headers: { range: `bytes=${off}-${off + 4095}` } };
      })
    : [{ method: 'GET' as const, path: s.path, headers: s.headers }];
  const r = await autocannon({ url: base, connections: s.connections, duration, requests });
  return { requestsPerSec: r.requests.average, bytesPerSec: r.throughput.average, errors: r.errors + r.timeouts + r.non2xx };
}

export async function benchRegistry(options: RegistryBenchOptions = {}): Promise<void> {
  const duration = options.duration ?? 5;
  const rounds = options.rounds ?? 2;
  for (const tool of ['/usr/bin/docker-registry', '/usr/bin/skopeo']) {
    if (!existsSync(tool)) {
      console.log(`registry bench: skipped (${tool} is not installed; run node scripts/ensure-tools.js)`);
      return;
    }
  }
  const dir = await tempDir('bench-registry');
  const image = await makeTestImage({ name: 'bench/model', tag: 'v1', weights: options.weights ?? 64 * 1024 * 1024, store: path.join(dir, 'store') });
  const logFile = createWriteStream(path.join(dir, 'requests.log'));
  const ours = await startRegistry({ store: image.store, host: '127.0.0.1', port: 0, log: (line) => logFile.write(line + '\n') });
  const cncf = await startCncfRegistry({ dir: path.join(dir, 'cncf') });
  try {
    await pushLayout(image.store, image.name, image.tag, cncf.hostPort);
    const blob = `/v2/${image.name}/blobs/${image.layer}`;
    const scenarios: Scenario[] = [
      { label: 'full-blob GET', unit: 'MB/s', connections: 4, target: 1, value: (l) => l.bytesPerSec / 1e6, path: blob },
      { label: '4 KiB range GET', unit: 'req/s', connections: 32, target: 8, value: (l) => l.requestsPerSec, path: blob, rangesOf: image.layerSize },
      {
        label: 'manifest GET',
        unit: 'req/s',
        connections: 32,
        target: 6,
        value: (l) => l.requestsPerSec,
        path: `/v2/${image.name}/manifests/${image.tag}`,
        headers: { Accept: INDEX_ACCEPT },
      },
    ];
    const toolName = existsSync(WRK) ? 'wrk -t1' : 'autocannon';
    console.log(
      `registry: same image (layer ${(image.layerSize / 2 ** 20).toFixed(1)} MiB) from depot-ai and the CNCF registry; ` +
        `${toolName}, ${duration} s per run, best of ${rounds}`,
    );
    const rows: string[][] = [['', 'connections', 'depot-ai', 'CNCF', 'ratio', 'target', '']];
    for (const s of scenarios) {
      let best = { ours: 0, cncf: 0 };
      let errors = 0;
      for (let round = 0; round < rounds; round++) {
        // Alternate which server goes first, so neither always gets the warmer machine.
        const order = round % 2 === 0 ? (['ours', 'cncf'] as const) : (['cncf', 'ours'] as const);
        for (const which of order) {
          const result = await load(which === 'ours' ? ours.url : cncf.url, s, duration, dir);
          errors += result.errors;
          best = { ...best, [which]: Math.max(best[which], s.value(result)) };
        }
      }
      const ratio = best.cncf > 0 ? best.ours / best.cncf : Infinity;
      rows.push([
        `${s.label} (${s.unit})`,
        String(s.connections),
        best.ours.toFixed(s.unit === 'MB/s' ? 1 : 0),
        best.cncf.toFixed(s.unit === 'MB/s' ? 1 : 0),
        `${ratio.toFixed(2)}x`,
        `>= ${s.target}x`,
        (ratio >= s.target ? 'ok' : 'BELOW TARGET') + (errors ? ` (${errors} errors)` : ''),
      ]);
    }
    const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    for (const row of rows) console.log('  ' + row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  '));
  } finally {
    await ours.close();
    await cncf.stop();
    logFile.end();
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await benchRegistry();
}
