// The provenance a model page shows: only an attestation verified as `depot-ai verify
// --provenance` verifies it (trust/check.ts: the signature under the configured signer, the
// subject = the index, the Hub repository and commit = the catalog entry's), read from the
// registry the site is built from (DEPOT_REGISTRY_URL, within a deadline per model) or else from
// the store, its file digests matched against the image's eStargz TOC. Nothing of the
// statement becomes a link except a GitHub Actions run URL rebuilt from its parts.
import { readFile } from 'node:fs/promises';
import { registryImage, type ImageInfo } from '../../builder/image-info.ts';
import { checkProvenance, registryAttestations, storeAttestations } from '../../trust/check.ts';
import { publicKeyFromPem, type TrustPolicy } from '../../trust/signing.ts';
import type { SiteConfig } from './config.ts';
import { within } from './deadline.ts';

export interface PageProvenance {
  /** The builder id (the workflow at its ref), shown as text. */
  builderId: string;
  /** https://github.com/OWNER/REPO/actions/runs/ID[/attempts/N] when the invocation is one. */
  runUrl?: string;
  commit: string;
  /** ISO 8601. */
  finishedOn: string;
}

let policy: Promise<TrustPolicy | undefined> | undefined;

/** The signer from the configuration, read once per build; undefined (said once on stderr) when none is set. */
function trustPolicy(config: SiteConfig): Promise<TrustPolicy | undefined> {
  return (policy ??= (async () => {
    if (config.provenanceKey) return { key: publicKeyFromPem(await readFile(config.provenanceKey, 'utf8')) };
    if (config.provenanceIdentity) return { identity: config.provenanceIdentity };
    console.warn('site: model pages show no provenance: set DEPOT_PROVENANCE_KEY (a PEM public key) or DEPOT_PROVENANCE_IDENTITY (the publishing workflow identity)');
    return undefined;
  })());
}

/**
 * The verified provenance of `entry`'s image (index `image.indexDigest`, whose files' digests the
 * statement must match), or undefined, with one line on stderr saying why when an attestation is
 * there but does not verify, cannot be read, or is not read within config.provenanceDeadlineMs.
 */
export async function pageProvenance(config: SiteConfig, entry: { name: string; image: string; sha: string }, image: Pick<ImageInfo, 'indexDigest' | 'files'>): Promise<PageProvenance | undefined> {
  const signer = await trustPolicy(config);
  if (!signer) return undefined;
  const files = async () => Object.fromEntries(image.files.flatMap((f) => (f.digest ? [[f.path, f.digest]] : [])));
  try {
    const check = await within(checkProvenance(attestations(config, entry.image), { indexDigest: image.indexDigest, name: entry.name, revision: entry.sha }, signer, files), config.provenanceDeadlineMs, `the registry's answers took more than ${config.provenanceDeadlineMs / 1000} s in all`);
    if ('verified' in check) {
      const { builderId, invocationId, commit, finishedOn } = check.verified;
      return { builderId, runUrl: invocationId && actionsRunUrl(invocationId), commit, finishedOn: Number.isNaN(Date.parse(finishedOn)) ? '' : new Date(finishedOn).toISOString() };
    }
    if ('rejected' in check) console.warn(`site: ${entry.name}: no provenance shown: ${check.rejected}`);
  } catch (error) {
    console.warn(`site: ${entry.name}: no provenance shown: ${(error as Error).message}`);
  }
  return undefined;
}

/** Where `image`'s attestations are read: the registry (each request ending by the deadline too), else the store. */
function attestations(config: SiteConfig, image: string) {
  if (!config.registryUrl) return storeAttestations(config.store, image);
  const { client, repository } = registryImage(config.registryUrl, image, config.provenanceDeadlineMs);
  return registryAttestations(client, repository);
}

const ACTIONS_RUN = /^https:\/\/github\.com\/([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)\/actions\/runs\/(\d+)(?:\/attempts\/(\d+))?$/;

/** A GitHub Actions run URL rebuilt from its parts, or undefined for anything else. */
export function actionsRunUrl(invocationId: string): string | undefined {
  const m = ACTIONS_RUN.exec(invocationId);
  return m ? `https://github.com/${m[1]}/${m[2]}/actions/runs/${m[3]}${m[4] ? `/attempts/${m[4]}` : ''}` : undefined;
}
