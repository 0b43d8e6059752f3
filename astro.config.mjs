// Astro configuration for the depot.ai website (sources in site/, static output).
// Build-time settings come from the environment; see site/lib/config.ts.
import { defineConfig } from 'astro/config';
import tailwind from '@astrojs/tailwind';
import sitemap from '@astrojs/sitemap';
import { siteConfig } from './site/lib/config.ts';
import { catalogGuard } from './site/lib/catalog-guard.ts';
import { indexedPages } from './site/lib/sitemap-filter.ts';

const config = siteConfig();

export default defineConfig({
  site: config.siteUrl,
  srcDir: 'site',
  publicDir: 'site/public',
  outDir: config.outDir,
  output: 'static',
  trailingSlash: 'never',
  // `/runwayml/stable-diffusion-v1-5` is served from `runwayml/stable-diffusion-v1-5.html`.
  build: { format: 'file', inlineStylesheets: 'always' },
  compressHTML: true,
  devToolbar: { enabled: false },
  integrations: [catalogGuard(config.catalog, config.facts), tailwind({ applyBaseStyles: true }), sitemap({ filter: indexedPages(config.outDir) })],
});
