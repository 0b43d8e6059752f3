// depot-ai build NAME --from DIR: one image from a local folder into the store.
import { DEFAULT_CATALOG, DEFAULT_TAG, loadCatalog } from '../models/catalog.ts';
import { buildImage } from '../builder/build.ts';
import { DEFAULT_STORE } from '../builder/layout.ts';
import { FolderSource } from '../builder/source.ts';
import { parseCommandArgs, UsageError } from './args.ts';
import { formatBytes, progressReporter } from './progress.ts';

export async function buildCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, {
    from: { type: 'string' },
    store: { type: 'string', default: process.env.DEPOT_STORE ?? DEFAULT_STORE },
    tag: { type: 'string' },
    sha: { type: 'string' },
    catalog: { type: 'string', default: DEFAULT_CATALOG },
  });
  if (positionals.length !== 1) throw new UsageError('build takes one NAME: depot-ai build NAME --from DIR');
  if (!values.from) throw new UsageError('build needs --from DIR (the folder holding the model files)');
  const name = positionals[0];
  const listed = await catalogEntry(values.catalog, name);

  const progress = progressReporter(`build ${name}`);
  const result = await buildImage({
    name,
    source: new FolderSource(values.from),
    store: values.store,
    tag: values.tag ?? listed?.tag ?? DEFAULT_TAG,
    sha: values.sha ?? listed?.sha,
    epoch: sourceDateEpoch(),
    onProgress: progress.update,
  });
  progress.end();
  const rate = result.inputBytes / Math.max(result.seconds, 1e-3);
  console.log(
    [
      `image         ${result.image}:${result.tag}`,
      `index         ${result.indexDigest}`,
      `layer         ${formatBytes(result.compressedSize)} (${result.layerDigest})`,
      `uncompressed  ${formatBytes(result.uncompressedSize)}`,
      `files         ${result.files}`,
      `time          ${result.seconds.toFixed(2)} s (${formatBytes(rate)}/s)`,
    ].join('\n'),
  );
  return 0;
}

/** The catalog's entry for NAME, if the catalog exists and lists it (a broken catalog is an error). */
async function catalogEntry(file: string, name: string) {
  const { existsSync } = await import('node:fs');
  if (!existsSync(file)) return undefined;
  return (await loadCatalog(file)).find((m) => m.name === name || m.image === name.toLowerCase());
}

function sourceDateEpoch(): number {
  const raw = process.env.SOURCE_DATE_EPOCH;
  if (raw === undefined || raw === '') return 0;
  if (!/^\d+$/.test(raw)) throw new UsageError(`SOURCE_DATE_EPOCH must be a whole number of seconds, not "${raw}"`);
  return Number(raw);
}
