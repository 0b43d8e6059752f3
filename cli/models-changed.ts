// depot-ai models changed [FILE] (--since REF | --name NAME) [--summary FILE]: the entries publishing must build,
// as a JSON array (one GitHub Actions matrix entry each): added, new sha or new tag since the git
// revision REF, or every entry of the model NAME.
import { appendFile, readFile } from 'node:fs/promises';
import { imageName, loadCatalog, type ModelEntry } from '../models/catalog.ts';
import { changedModels, type ChangeKind } from '../models/changes.ts';
import { catalogAt } from '../models/git.ts';
import { parseCommandArgs, UsageError } from './args.ts';
import { catalogFile } from './models.ts';

export interface Target {
  model: ModelEntry;
  /** Why it is listed: its change since REF, or undefined when every entry is. */
  change?: Exclude<ChangeKind, 'removed'>;
}

/** Every entry, or those added or changed since the git revision `since`. */
export async function targets(file: string, since: string | undefined): Promise<Target[]> {
  if (since === undefined) return (await loadCatalog(file)).map((model) => ({ model }));
  await loadCatalog(file); // the same errors as every other command for a missing or bad file
  return changedModels(await catalogAt(since, file), await readFile(file, 'utf8'), file).flatMap((c) => (c.kind === 'removed' ? [] : [{ model: c.model, change: c.kind }]));
}

export async function changedCommand(args: string[]): Promise<number> {
  const { positionals, values } = parseCommandArgs(args, { since: { type: 'string' }, name: { type: 'string' }, summary: { type: 'string' } });
  const file = catalogFile(positionals, 'changed');
  if ((values.since === undefined) === (values.name === undefined)) throw new UsageError('models changed needs exactly one of --since REF or --name NAME');
  let chosen: Target[];
  if (values.name !== undefined) {
    const image = imageName(values.name);
    chosen = (await targets(file, undefined)).filter((t) => t.model.image === image);
    if (chosen.length === 0) throw new UsageError(`"${values.name}" is not in ${file}`);
  } else {
    chosen = await targets(file, values.since);
  }
  const rows = chosen.map(({ model, change }) => ({ name: model.name, image: model.image, tag: model.tag, sha: model.sha, ...(change ? { change } : {}) }));
  console.log(JSON.stringify(rows));
  if (values.summary) {
    const title = values.since === undefined ? `### Publishing ${values.name}` : `### Models to publish (changed since \`${values.since}\`)`;
    const lines = rows.map((r) => `- \`${r.name}:${r.tag}\` at \`${r.sha}\`${r.change ? ` (${r.change})` : ''}`);
    await appendFile(values.summary, `${title}\n\n${lines.length > 0 ? lines.join('\n') : 'None.'}\n`);
  }
  return 0;
}
