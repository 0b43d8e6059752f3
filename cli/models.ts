// depot-ai models SUBCOMMAND: the catalog commands. `check` validates offline; `update`, `top`
// and `verify` ask Hugging Face (HF_ENDPOINT, HF_TOKEN); `changed` lists what publishing builds.
import { DEFAULT_CATALOG, loadCatalog } from '../models/catalog.ts';
import { parseCommandArgs, UsageError } from './args.ts';

export const MODELS_USAGE = `Usage: depot-ai models <command>

  check [FILE]                      validate the catalog (default ${DEFAULT_CATALOG})
  update [FILE]                     set every sha to its repository's current head
  top N [FILE]                      add the N most-downloaded models not yet listed
  verify [FILE] [--changed-since REF] [--summary FILE]
                                    check entries exist, are public, ungated, at a real sha
  changed [FILE] (--since REF | --name NAME) [--summary FILE]
                                    the entries to publish, as a JSON array
`;

type Subcommand = (args: string[]) => Promise<number>;

const SUBCOMMANDS: Record<string, () => Promise<Subcommand>> = {
  check: async () => checkCommand,
  update: async () => (await import('./models-edit.ts')).updateCommand,
  top: async () => (await import('./models-edit.ts')).topCommand,
  verify: async () => (await import('./models-verify.ts')).verifyCommand,
  changed: async () => (await import('./models-changed.ts')).changedCommand,
};

export async function modelsCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(MODELS_USAGE);
    return 0;
  }
  const load = SUBCOMMANDS[sub ?? ''];
  if (!load) throw new UsageError(`unknown models command "${sub ?? ''}": use ${Object.keys(SUBCOMMANDS).join(', ')} (depot-ai models --help)`);
  return (await load())(rest);
}

/** The optional FILE positional shared by every subcommand. */
export function catalogFile(positionals: string[], command: string, before = 0): string {
  if (positionals.length > before + 1) throw new UsageError(`models ${command} takes at most one FILE`);
  return positionals[before] ?? DEFAULT_CATALOG;
}

async function checkCommand(args: string[]): Promise<number> {
  const file = catalogFile(parseCommandArgs(args, {}).positionals, 'check');
  const models = await loadCatalog(file);
  const owners = new Set(models.map((m) => (m.name.includes('/') ? m.name.split('/')[0] : m.name)));
  console.log(`${file}: OK, ${models.length} models from ${owners.size} owners`);
  return 0;
}
