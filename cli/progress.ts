// Progress for long work: a live line (bytes, rate, ETA) on a terminal, a plain line every
// few seconds elsewhere (CI logs), nothing for work that ends quickly.
const PLAIN_EVERY_MS = 5000;
const LIVE_EVERY_MS = 200;

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

export function progressReporter(label: string, stream: NodeJS.WriteStream = process.stderr): {
  update(done: number, total: number): void;
  end(): void;
} {
  const live = stream.isTTY === true && !process.env.CI;
  const started = Date.now();
  let last = started;
  let shown = false;
  return {
    update(done, total) {
      const now = Date.now();
      if (now - last < (live ? LIVE_EVERY_MS : PLAIN_EVERY_MS) || done === 0) return;
      last = now;
      const seconds = (now - started) / 1000;
      const rate = done / seconds;
      const eta = rate > 0 ? Math.max(0, (total - done) / rate) : 0;
      const percent = total > 0 ? ((100 * done) / total).toFixed(0) : '100';
      const line = `${label}: ${formatBytes(done)} / ${formatBytes(total)} (${percent}%), ${formatBytes(rate)}/s, ETA ${eta.toFixed(0)}s`;
      shown = true;
      if (live) stream.write(`\r\x1b[2K${line}`);
      else stream.write(`${line}\n`);
    },
    end() {
      if (live && shown) stream.write('\r\x1b[2K');
    },
  };
}
