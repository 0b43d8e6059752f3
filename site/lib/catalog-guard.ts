// An Astro integration that validates the catalog and its facts before anything is built: a broken
// models.yaml stops `astro build` with the same `FILE:LINE:COL: message` lines as `depot-ai models
// check`, a broken facts.json with one line naming the field, and no page is written.
import type { AstroIntegration } from 'astro';
import { CatalogError, loadCatalog } from '../../models/catalog.ts';
import { FactsError, loadFacts } from '../../models/facts.ts';

export function catalogGuard(file: string, factsFile: string): AstroIntegration {
  return {
    name: 'depot-ai:catalog-guard',
    hooks: {
      'astro:config:setup': async ({ command }) => {
        try {
          await loadCatalog(file);
          await loadFacts(factsFile);
        } catch (error) {
          if (!(error instanceof CatalogError || error instanceof FactsError)) throw error;
          process.stderr.write(error.message + '\n');
          // In dev the pages show the error instead; a build must stop before it writes anything.
          if (command === 'build') process.exit(1);
        }
      },
    },
  };
}
