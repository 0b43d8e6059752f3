// The catalog as it was at a git revision (`git show REF:FILE`), for "what changed since".
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export class GitError extends Error {}

/** The text of `file` at `ref`; undefined when the file did not exist there. */
export async function catalogAt(ref: string, file: string): Promise<string | undefined> {
  const cwd = path.dirname(path.resolve(file));
  const git = (...args: string[]) => run('git', args, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  try {
    await git('rev-parse', '--verify', '--quiet', `${ref}^{commit}`);
  } catch (error) {
    const stderr = String((error as { stderr?: string }).stderr ?? '').trim();
    throw new GitError(stderr.includes('not a git repository') ? `${cwd} is not in a git repository` : `unknown git revision "${ref}" (fetch it first, e.g. git fetch origin ${ref})`);
  }
  try {
    return (await git('show', `${ref}:./${path.basename(file)}`)).stdout;
  } catch (error) {
    const stderr = String((error as { stderr?: string }).stderr ?? '');
    if (/does not exist|exists on disk, but not in/.test(stderr)) return undefined;
    throw new GitError(`git show ${ref}:${file}: ${stderr.trim().split('\n')[0]}`);
  }
}
