// depot-ai models verify [FILE] [--changed-since REF] [--summary FILE]: before anything is built,
// check on Hugging Face that each entry (or each one added or changed since REF) exists, is
// public and not gated, and that its sha is a real revision; print the size of each and record
// its facts (models/facts.json) for the site. Problems are
// FILE:LINE:COL lines and a non-zero exit. --summary appends a Markdown table (a CI job summary).
import { appendFile } from 'node:fs/promises';
import { Hub, repoProblemMessage } from '../models/hub.ts';
import { parseCommandArgs } from './args.ts';
import { catalogFile } from './models.ts';
import { recordFacts, reportProblems } from './models-edit.ts';
import { loadCatalog } from '../models/catalog.ts';
import { factsFileFor, loadFacts, type ModelFacts } from '../models/facts.ts';
import { targets, type Target } from './models-changed.ts';
import { formatBytes } from './progress.ts';

interface Verified extends Target {
  size?: { files: number; bytes: number };
  problem?: string;
}

export async function verifyCommand(args: string[]): Promise<number> {
  const { positionals, values } = parseCommandArgs(args, { 'changed-since': { type: 'string' }, summary: { type: 'string' } });
  const file = catalogFile(positionals, 'verify');
  const since = values['changed-since'];
  const hub = new Hub();
  await loadFacts(factsFileFor(file)); // a broken facts file stops here, before any request
  const results: Verified[] = (await targets(file, since)).map((t) => ({ ...t }));
  const fetched = new Map<string, ModelFacts>();
  for (const result of results) {
    const { name, sha } = result.model;
    const status = await hub.repo(name);
    if (status.problem) result.problem = repoProblemMessage(name, status.problem, hub.options.hubUrl);
    else if (!(await hub.revisionExists(name, sha))) result.problem = `sha ${sha} is not a revision of ${name} on ${hub.options.hubUrl}`;
    else {
      const facts = await hub.facts(name, sha);
      result.size = { files: facts.files!, bytes: facts.bytes! };
      fetched.set(name, facts);
    }
  }

  for (const r of results) {
    if (r.size) console.log(`${r.model.name}@${r.model.sha.slice(0, 12)}: ${r.size.files} files, ${formatBytes(r.size.bytes)}`);
  }
  const ok = results.filter((r) => r.size).length;
  const scope = since === undefined ? 'models' : `models added or changed since ${since}`;
  console.log(`${file}: ${ok} of ${results.length} ${scope} verified`);
  await recordFacts(file, fetched, new Set((await loadCatalog(file)).map((m) => m.name)));
  if (values.summary) await appendFile(values.summary, summaryTable(results, since));
  return reportProblems(file, results.flatMap((r) => (r.problem ? [{ model: r.model, message: r.problem }] : [])));
}

/** The Markdown job summary: one row per model checked. */
export function summaryTable(results: Verified[], since: string | undefined): string {
  const title = since === undefined ? '### Models' : `### Models added or changed since \`${since}\``;
  if (results.length === 0) return `${title}\n\nNone.\n`;
  const rows = results.map((r) => {
    const cells = [`\`${r.model.name}\``, r.change ?? '', `\`${r.model.sha.slice(0, 12)}\``, r.model.tag, r.size ? String(r.size.files) : '', r.size ? formatBytes(r.size.bytes) : '', r.problem ? `❌ ${r.problem.replaceAll('|', '\\|')}` : '✅'];
    return `| ${cells.join(' | ')} |`;
  });
  return `${title}\n\n| model | change | sha | tag | files | size | status |\n| --- | --- | --- | --- | ---: | ---: | --- |\n${rows.join('\n')}\n`;
}
