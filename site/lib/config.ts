// Build-time settings for the website, all from the environment so a self-hosted copy shows its own host.
import { DEFAULT_CATALOG } from '../../models/catalog.ts';
import { factsFileFor } from '../../models/facts.ts';

export interface SiteConfig {
  /** Registry host used in every snippet (`depot.ai`). */
  registryHost: string;
  /** Public URL of the site, for canonical URLs and the sitemap. */
  siteUrl: string;
  /** The catalog file. */
  catalog: string;
  /** The model facts written by `models update` (default: facts.json beside the catalog). */
  facts: string;
  /** The image store (one OCI image layout per image) read for digests, sizes and file lists. */
  store: string;
  /** Where the built site is written. */
  outDir: string;
  /** A registry (`https://host[/prefix]`) to read image data from instead of the store, when set. */
  registryUrl: string | undefined;
  /** The provenance signer model pages trust: a PEM public key file (DEPOT_PROVENANCE_KEY), or the keyless workflow identity URI (DEPOT_PROVENANCE_IDENTITY); neither: no provenance shown. */
  provenanceKey: string | undefined;
  provenanceIdentity: string | undefined;
}

export function siteConfig(env: NodeJS.ProcessEnv = process.env): SiteConfig {
  return {
    registryHost: env.DEPOT_REGISTRY_HOST || 'depot.ai',
    siteUrl: env.DEPOT_SITE_URL || 'https://depot.ai',
    catalog: env.DEPOT_CATALOG || DEFAULT_CATALOG,
    facts: env.DEPOT_FACTS || factsFileFor(env.DEPOT_CATALOG || DEFAULT_CATALOG),
    store: env.DEPOT_STORE || '.depot/store',
    outDir: env.DEPOT_SITE_OUT_DIR || 'dist',
    registryUrl: env.DEPOT_REGISTRY_URL || undefined,
    provenanceKey: env.DEPOT_PROVENANCE_KEY || undefined,
    provenanceIdentity: env.DEPOT_PROVENANCE_IDENTITY || undefined,
  };
}
