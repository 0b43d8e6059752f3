// One line per request, written in batches so logging does not cost a syscall per request.

export type LogSink = (line: string) => void;

export interface RequestLog {
  line(line: string): void;
  flush(): void;
}

export function createRequestLog(sink?: LogSink | false, stream: NodeJS.WritableStream = process.stdout): RequestLog {
  if (sink === false) return { line() {}, flush() {} };
  if (sink) return { line: sink, flush() {} };
  let pending: string[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (pending.length === 0) return;
    const text = pending.join('\n') + '\n';
    pending = [];
    stream.write(text);
  };
  return {
    line(line) {
      pending.push(line);
      if (pending.length >= 512) flush();
      else if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    flush,
  };
}

/** `2024-01-01T00:00:00.000Z GET /v2/x/manifests/latest 200 1234B 0.8ms` (bytes `-` when the client left early). */
export function formatRequest(method: string, path: string, status: number, bytes: number | undefined, ms: number): string {
  return `${new Date().toISOString()} ${method} ${path} ${status} ${bytes === undefined ? '-' : `${bytes}B`} ${ms.toFixed(1)}ms`;
}
