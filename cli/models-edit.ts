// depot-ai models update [FILE] / top N [FILE]: edit the catalog from what Hugging Face says now;
// update also refreshes the model facts beside it (models/facts.json) for the site.
// Only the changed scalars (or the appended entries) are written; the rest of the file is left
// byte for byte. A repository that can no longer be published is one FILE:LINE:COL line and a
// non-zero exit (the other entries are still updated); a Hub that cannot be reached changes nothing.
import { readFile } from 'node:fs/promises';
import { formatProblem, imageName, loadCatalog, nameProblem, type ModelEntry } from '../models/catalog.ts';
import { appendEntries, setShas, type NewEntry } from '../models/edit.ts';
import { factsFileFor, loadFacts, serializeFacts, type ModelFacts } from '../models/facts.ts';
import { Hub, repoProblemMessage } from '../models/hub.ts';
import { writeAtomic } from '../image/layout.ts';
import { parseCommandArgs, UsageError } from './args.ts';
import { catalogFile } from './models.ts';

export async function updateCommand(args: string[]): Promise<number> {
  const file = catalogFile(parseCommandArgs(args, {}).positionals, 'update');
  const models = await loadCatalog(file);
  await loadFacts(factsFileFor(file)); // a broken facts file stops here, before anything is written
  const hub = new Hub();
  const heads = new Map<string, string>();
  const problems = new Map<string, string>();
  const names = [...new Set(models.map((m) => m.name))];
  // One request at a time: gentle on the Hub's rate limits, and a catalog is a few hundred entries.
  for (const name of names) {
    const status = await hub.repo(name);
    if (status.problem) problems.set(name, repoProblemMessage(name, status.problem, hub.options.hubUrl));
    else heads.set(name, status.sha);
  }

  const facts = new Map<string, ModelFacts>();
  for (const [name, head] of heads) facts.set(name, await hub.facts(name, head));

  const shas = new Map<number, string>();
  models.forEach((m, index) => {
    const head = heads.get(m.name);
    if (head && head !== m.sha) {
      shas.set(index, head);
      console.log(`${m.name}: ${m.sha.slice(0, 12)} -> ${head.slice(0, 12)}`);
    }
  });
  if (shas.size > 0) await writeAtomic(file, setShas(await readFile(file, 'utf8'), shas, file));
  console.log(`${file}: ${shas.size} of ${models.length} shas updated`);
  await recordFacts(file, facts, new Set(names));
  return reportProblems(file, models.flatMap((model) => (problems.has(model.name) ? [{ model, message: problems.get(model.name)! }] : [])));
}

export async function topCommand(args: string[]): Promise<number> {
  const { positionals } = parseCommandArgs(args, {});
  const count = Number(positionals[0]);
  if (!/^\d+$/.test(positionals[0] ?? '') || count < 1) throw new UsageError('models top needs a count N (a whole number, at least 1): depot-ai models top N [FILE]');
  const file = catalogFile(positionals, 'top', 1);
  const models = await loadCatalog(file);
  const listed = new Set(models.map((m) => m.image));
  const added: NewEntry[] = [];
  for await (const model of new Hub().mostDownloaded()) {
    const name = imageName(model.name);
    if (listed.has(name) || nameProblem(name)) continue;
    listed.add(name);
    added.push({ name, sha: model.sha, tag: 'latest' });
    console.log(`${name}: added at ${model.sha.slice(0, 12)}`);
    if (added.length >= count) break;
  }
  if (added.length > 0) await writeAtomic(file, appendEntries(await readFile(file, 'utf8'), added, file));
  console.log(`${file}: ${added.length} models added${added.length < count ? ` (the Hub listed no more than ${added.length} new public, ungated ones)` : ''}`);
  return 0;
}

/**
 * Write `fetched` into the facts file beside `catalog` (models/facts.json), keeping the earlier
 * facts of other models still in `listed` and dropping those of models no longer listed.
 */
export async function recordFacts(catalog: string, fetched: Map<string, ModelFacts>, listed: Set<string>): Promise<void> {
  const file = factsFileFor(catalog);
  const facts = await loadFacts(file);
  for (const name of Object.keys(facts.models)) if (!listed.has(name)) delete facts.models[name];
  for (const [name, value] of fetched) facts.models[name] = value;
  facts.updated = new Date().toISOString();
  await writeAtomic(file, serializeFacts(facts));
  console.log(`${file}: facts of ${fetched.size} ${fetched.size === 1 ? 'model' : 'models'} updated`);
}

/** One FILE:LINE:COL line per problem, at its entry; the exit code (1 when there is any). */
export function reportProblems(file: string, problems: Array<{ model: ModelEntry; message: string }>): number {
  for (const { model, message } of problems) process.stderr.write(`${formatProblem({ file, line: model.line, column: model.column, message })}\n`);
  return problems.length > 0 ? 1 : 0;
}
