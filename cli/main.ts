// depot-ai: one entry point, one small module per command. Bad input ends in one clear line
// and a non-zero exit, never a stack trace (set DEPOT_DEBUG=1 to see one).
// Only what --help needs is imported up front: the catalog (yaml), builder and client load with
// the command that uses them, or with the error being explained, so start-up stays short.
import { UsageError } from './args.ts';

const USAGE = `Usage: depot-ai <command>

  models check [FILE]          validate the catalog (default models/models.yaml)
  models update|top|verify|changed ...
                               refresh and check the catalog against Hugging Face
                               (depot-ai models --help)
  build NAME [NAME...] | --all  build catalog entries from Hugging Face at their sha
        [--push HOST[/PREFIX]] [--insecure] [--cache DIR]
        [--attest [--signing-key KEY.pem]]
                               attach signed SLSA provenance to each image (keyless
                               Sigstore through the CI's OIDC token, or a local key)
        [--keep] [--window SIZE] [--upload-chunk SIZE]
                               --push streams the image into the registry (no local
                               copy; --keep also builds it into the store first);
                               --window: download disk (1G), --upload-chunk: PATCH
                               size held in memory (32M)
  build NAME --from DIR        build image NAME from a local folder into the store
        [--store DIR] [--tag TAG] [--sha SHA]
        [--prefetch small|PATTERN]...  list these files before the eStargz prefetch
                               landmark (small: configs, tokenizers, *.json, *.txt)
  serve [--store DIR] [--host 127.0.0.1] [--port 5000] [--upstream URL [--tag-ttl 300]]
                               serve the store as a read-only OCI registry; with
                               --upstream, a pull-through cache rechecking tags after
                               --tag-ttl seconds
  verify [--prefix P] REGISTRY/NAME[:TAG|@DIGEST]... | --all [--registry HOST[/PREFIX]] [--sample N]
        [--provenance --key PUBLIC.pem | --identity URI] [--deadline 120] [--insecure]
                               rebuild images of the Hub repository NAME names (with --all:
                               the catalog entry, at its sha) and compare digests;
                               --provenance also checks the signed SLSA attestation; all
                               registry reads of an image within --deadline seconds
                               (exit 0 identical, 1 any difference)
  cp [--insecure] REGISTRY/IMAGE[:TAG|@DIGEST]:/PATH DEST
                               fetch one file of an image with range requests
  start [--store DIR] [--port 5000] [--site-port 4321]
                               example model + registry + site, all local (npm start)
`;

type Command = (args: string[]) => Promise<number>;

const COMMANDS: Record<string, () => Promise<Command>> = {
  models: async () => (await import('./models.ts')).modelsCommand,
  build: async () => (await import('./build.ts')).buildCommand,
  serve: async () => (await import('./serve.ts')).serveCommand,
  start: async () => (await import('./start.ts')).startCommand,
  cp: async () => (await import('./cp.ts')).cpCommand,
  verify: async () => (await import('./verify.ts')).verifyCommand,
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE);
    return name ? 0 : 2;
  }
  const load = COMMANDS[name];
  if (!load) return fail(`unknown command "${name}"\n${USAGE}`, 2);
  try {
    return await (await load())(rest);
  } catch (error) {
    if (process.env.DEPOT_DEBUG) console.error(error);
    if (error instanceof UsageError) return fail(error.message, 2);
    const [{ CatalogError }, { BuildError }, { RemoteError }] = await Promise.all([import('../models/catalog.ts'), import('../builder/build.ts'), import('../client/remote.ts')]);
    // Catalog problems are FILE:LINE:COL lines already, the same ones the site build prints.
    if (error instanceof CatalogError) {
      process.stderr.write(`${error.message}\n`);
      return 1;
    }
    if (error instanceof BuildError || error instanceof RemoteError) return fail(error.message, 1);
    const { code, address, port } = error as NodeJS.ErrnoException & { address?: string; port?: number };
    if (code === 'ENOSPC') return fail('the disk is full', 1);
    if (code === 'EADDRINUSE') return fail(`${address}:${port} is already in use: choose another --port`, 1);
    return fail(String((error as Error).message ?? error), 1);
  }
}

function fail(message: string, code: number): number {
  process.stderr.write(`depot-ai: ${message}\n`);
  return code;
}
