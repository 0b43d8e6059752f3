// depot-ai start (npm start): the whole thing on this machine, offline. Builds the example model
// into the store when the store is empty, serves the registry, builds the site with snippets
// pointing at that registry, serves the site, and prints what to try. Ctrl-C stops both.
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:net';
import { stringify } from 'yaml';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildImage } from '../builder/build.ts';
import { DEFAULT_STORE, ImageLayout, listImages } from '../image/layout.ts';
import { FolderSource } from '../sources/folder.ts';
import { ANNOTATION } from '../image/oci.ts';
import { EXAMPLE_NAME, writeExampleModel } from '../examples/tiny-bert.ts';
import { DEFAULT_CATALOG, loadCatalog } from '../models/catalog.ts';
import { startRegistry } from '../registry/server.ts';
import { parseCommandArgs, UsageError } from './args.ts';
import { parsePort } from './serve.ts';

export async function startCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, {
    store: { type: 'string', default: process.env.DEPOT_STORE ?? DEFAULT_STORE },
    port: { type: 'string', default: '5000' },
    'site-port': { type: 'string', default: '4321' },
  });
  if (positionals.length > 0) throw new UsageError(`start takes no arguments, got "${positionals[0]}"`);
  const store = values.store;
  const models = await loadCatalog(DEFAULT_CATALOG);

  if ((await listImages(store)).length === 0) {
    const dir = path.join(path.dirname(path.resolve(store)), 'examples', EXAMPLE_NAME);
    const sha = writeExampleModel(dir);
    const built = await buildImage({ name: EXAMPLE_NAME, source: new FolderSource(dir), store, tag: 'latest', sha });
    console.log(`built the example model ${built.image}:latest (${built.indexDigest}) into ${store}`);
  }

  const registry = await startRegistry({ store, host: '127.0.0.1', port: parsePort(values.port), handleSignals: true });
  const host = `${registry.host}:${registry.port}`;

  // The site lists the catalog plus whatever the store holds that the catalog does not.
  const listed = new Set(models.map((m) => m.image));
  const extra: Array<{ name: string; sha: string; tag: string }> = [];
  for (const image of await listImages(store)) {
    const sha = listed.has(image) ? undefined : await revisionOf(store, image);
    if (sha) extra.push({ name: image, sha, tag: 'latest' });
  }
  const catalog = path.join(mkdtempSync(path.join(tmpdir(), 'depot-start-')), 'models.yaml');
  const entries = [...extra, ...models.map(({ name, sha, tag }) => ({ name, sha, tag }))];
  writeFileSync(catalog, stringify({ models: entries }));

  Object.assign(process.env, { DEPOT_REGISTRY_HOST: host, DEPOT_STORE: path.resolve(store), DEPOT_CATALOG: catalog, DEPOT_SITE_OUT_DIR: path.join(path.dirname(catalog), 'dist') });
  const astro = await import('astro');
  await astro.build({ logLevel: 'warn' });
  const site = await astro.preview({ logLevel: 'warn', server: { host: '127.0.0.1', port: parsePort(values['site-port']) } });
  const sitePort = boundPort(site);

  const example = entries[0].name.toLowerCase();
  console.log(
    [
      '',
      `registry  ${registry.url}/v2/`,
      `site      http://127.0.0.1:${sitePort}/`,
      '',
      'Try it (buildah needs --tls-verify=false for a plain-HTTP registry; docker allows 127.0.0.1):',
      `  FROM scratch`,
      `  COPY --from=${host}/${example} / .`,
      `  npx depot-ai cp --insecure ${host}/${example}:/config.json ./config.json`,
      '',
      'Ctrl-C stops both.',
    ].join('\n'),
  );
  await registry.closed;
  await site.stop();
  return 0;
}

/**
 * The port the site's preview server listens on: Astro reports the one it was asked for (0 for
 * "any free port"), its static preview server (`server`, not in Astro's types) the one it bound.
 */
function boundPort(site: { port: number }): number {
  const address = (site as { server?: Server }).server?.address();
  return address && typeof address === 'object' ? address.port : site.port;
}

/** The revision an image in the store was built from (its index label), if any. */
async function revisionOf(store: string, image: string): Promise<string | undefined> {
  const tagged = await new ImageLayout(store, image).resolveTag('latest');
  return tagged?.annotations?.[ANNOTATION.revision];
}
