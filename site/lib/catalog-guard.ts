// An Astro integration that validates the catalog before anything is built: a broken models.yaml
// stops `astro build` with the same `FILE:LINE:COL: message` lines as `depot-ai models check`,
// and no page is written.
import type { AstroIntegration } from 'astro';
import { CatalogError, loadCatalog } from '../../models/catalog.ts';

export function catalogGuard(file: string): AstroIntegration {
  return {
    name: 'depot-ai:catalog-guard',
    hooks: {
      'astro:config:setup': async ({ command }) => {
        try {
          await loadCatalog(file);
        } catch (error) {
          if (!(error instanceof CatalogError)) throw error;
          process.stderr.write(error.message + '\n');
          // In dev the pages show the error instead; a build must stop before it writes anything.
          if (command === 'build') process.exit(1);
        }
      },
    },
  };
}
