// Run the real depot-ai command the way a user does, and capture what it says.
// Asynchronous, so a server the test runs in-process keeps answering meanwhile.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(ROOT, 'bin/depot-ai.js');

export interface CliRun {
  status: number;
  stdout: string;
  stderr: string;
}

export function depotAi(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status: status ?? -1, stdout, stderr }));
  });
}

/** The same as depotAi (an earlier name some tests use). */
export const depotAiAsync = depotAi;

export interface RunningProcess {
  child: ChildProcess;
  /** Standard output so far. */
  stdout: string;
  /** Standard output and error so far, interleaved. */
  output: string;
  /** The exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** Resolves with the first match of `pattern` in the output; rejects if the process exits first. */
  waitFor(pattern: RegExp): Promise<RegExpExecArray>;
}

/** Start a long-running node process (a server) from the repository root and watch its output. */
export function startProcess(args: string[]): RunningProcess {
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const waiters = new Set<() => void>();
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const running: RunningProcess = {
    child,
    stdout: '',
    output: '',
    exited,
    waitFor: (pattern) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const match = pattern.exec(running.output);
          if (match) {
            waiters.delete(check);
            resolve(match);
          }
        };
        waiters.add(check);
        check();
        void exited.then((code) => reject(new Error(`exited (${code}) before printing ${pattern}:\n${running.output}`)));
      }),
  };
  const take = (isStdout: boolean) => (chunk: string) => {
    if (isStdout) running.stdout += chunk;
    running.output += chunk;
    for (const check of [...waiters]) check();
  };
  child.stdout!.setEncoding('utf8').on('data', take(true));
  child.stderr!.setEncoding('utf8').on('data', take(false));
  return running;
}
