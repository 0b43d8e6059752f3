// depot-ai models check [FILE]: every problem at once, as FILE:LINE:COL: message.
import { DEFAULT_CATALOG, loadCatalog } from '../models/catalog.ts';
import { parseCommandArgs, UsageError } from './args.ts';

export async function modelsCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'check') throw new UsageError(`unknown models command "${sub ?? ''}": try "models check [FILE]"`);
  const { positionals } = parseCommandArgs(rest, {});
  if (positionals.length > 1) throw new UsageError('models check takes at most one FILE');
  const file = positionals[0] ?? DEFAULT_CATALOG;
  const models = await loadCatalog(file);
  const owners = new Set(models.map((m) => (m.name.includes('/') ? m.name.split('/')[0] : m.name)));
  console.log(`${file}: OK, ${models.length} models from ${owners.size} owners`);
  return 0;
}
