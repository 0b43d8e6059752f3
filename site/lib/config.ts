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
  /** Milliseconds all registry reads for one model's provenance may take together (DEPOT_PROVENANCE_DEADLINE_S, default 60 s): then it is skipped. */
  provenanceDeadlineMs: number;
  /** Milliseconds all registry reads for one model's image data (index, manifest, TOC, revision tag) may take together (DEPOT_SITE_REGISTRY_DEADLINE_S, default 60 s): then its page is built without image data. */
  registryDeadlineMs: number;
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
    provenanceDeadlineMs: deadlineMs('DEPOT_PROVENANCE_DEADLINE_S', env.DEPOT_PROVENANCE_DEADLINE_S),
    registryDeadlineMs: deadlineMs('DEPOT_SITE_REGISTRY_DEADLINE_S', env.DEPOT_SITE_REGISTRY_DEADLINE_S),
  };
}

const DEFAULT_DEADLINE_S = 60;

/** The variable `name`'s seconds (a positive number, at most what a timer holds) to milliseconds; the default when unset. */
function deadlineMs(name: string, raw: string | undefined): number {
  if (raw === undefined || raw === '') return DEFAULT_DEADLINE_S * 1000;
  const seconds = Number(raw);
  if (!(seconds > 0 && seconds <= 2_147_483)) throw new Error(`${name} must be a number of seconds from 0 to 2147483, not "${raw}"`);
  return seconds * 1000;
}
