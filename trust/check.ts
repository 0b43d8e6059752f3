// Checking an image's provenance wherever it is kept (a registry, through client/'s verified
// reads, or the store's OCI layout): the attestations listed for the index (the first
// MAX_REFERRERS bundle artifacts), each bundle's signature under a trust policy, then the
// statement against what it must describe (provenance.ts provenanceProblems). One rule for
// `depot-ai verify --provenance` and the model pages.
import { ImageLayout } from '../image/layout.ts';
import { sha256Digest, type Descriptor } from '../image/oci.ts';
import { RemoteError, type RegistryClient } from '../client/remote.ts';
import { BUNDLE_ARTIFACT_TYPE, type ArtifactDescriptor, type ArtifactManifest } from './artifact.ts';
import { parseStatement, provenanceProblems, ProvenanceError, type ProvenanceExpectation, type ProvenanceSummary } from './provenance.ts';
import { verifiedPayload, type TrustPolicy } from './signing.ts';

/** A Sigstore bundle is a few KiB; anything much larger is not one. */
const MAX_BUNDLE = 4 * 1024 * 1024;
/**
 * How many listed attestations are fetched and checked, at most: an image has one per publish,
 * so a list longer than this is a registry stalling the reader with bogus entries.
 */
export const MAX_REFERRERS = 16;

/** Where attestations are read from; every byte returned is checked against its digest. */
export interface AttestationStore {
  /** The bundle artifacts whose subject is `subject`, as listed. */
  referrers(subject: string): Promise<Descriptor[]>;
  /** The artifact manifest `descriptor` names. */
  artifact(descriptor: Descriptor): Promise<ArtifactManifest>;
  /** The bundle blob `descriptor` names, at most `max` bytes. */
  blob(descriptor: Descriptor, max: number): Promise<Buffer>;
}

/** A registry's attestations for images in `repository`, read through `client` (referrers API, else the referrers tag). */
export function registryAttestations(client: RegistryClient, repository: string): AttestationStore {
  return {
    referrers: (subject) => client.referrers(repository, subject, { artifactType: BUNDLE_ARTIFACT_TYPE }),
    artifact: async (descriptor) => (await client.manifest(repository, descriptor.digest, { expected: descriptor }))!.json as unknown as ArtifactManifest,
    blob: (descriptor, max) => client.blobBytes(repository, descriptor, max),
  };
}

/** The store's attestations for `image` (what `build --attest` added to its layout), newest first. */
export function storeAttestations(store: string, image: string): AttestationStore {
  const layout = new ImageLayout(store, image);
  const read = async (descriptor: Descriptor, max: number) => {
    if (!(descriptor.size <= max)) throw new ProvenanceError(`${descriptor.digest} is ${descriptor.size} bytes, more than the ${max} allowed`);
    const bytes = await layout.readBlob(descriptor.digest);
    if (sha256Digest(bytes) !== descriptor.digest) throw new ProvenanceError(`the store's copy of ${descriptor.digest} is corrupt`);
    return bytes;
  };
  return {
    referrers: async (subject) => {
      const tagged = (await layout.tagged()) as ArtifactDescriptor[];
      const artifacts = tagged.filter((d) => d.artifactType === BUNDLE_ARTIFACT_TYPE).reverse();
      const about = await Promise.all(artifacts.map(async (d) => ((await read(d, MAX_BUNDLE).then((b) => JSON.parse(b.toString('utf8')) as ArtifactManifest).catch(() => undefined))?.subject?.digest === subject ? d : undefined)));
      return about.filter((d): d is ArtifactDescriptor => d !== undefined);
    },
    artifact: async (descriptor) => JSON.parse((await read(descriptor, MAX_BUNDLE)).toString('utf8')) as ArtifactManifest,
    blob: read,
  };
}

export type ProvenanceCheck = { verified: ProvenanceSummary } | { rejected: string } | { none: true };

/**
 * Check the attestations `store` lists for `expected.indexDigest` (the first MAX_REFERRERS):
 * `verified` with the first one signed under `policy` that describes the image (the index, the
 * Hub repository and commit, and when `files` is given every file's digest); else `rejected`
 * with the last problem found (one line); `none` when none is listed. Registry failures of the
 * listing itself throw RemoteError.
 */
export async function checkProvenance(store: AttestationStore, expected: ProvenanceExpectation, policy: TrustPolicy, files?: () => Promise<Record<string, string>>): Promise<ProvenanceCheck> {
  const referrers = (await store.referrers(expected.indexDigest)).slice(0, MAX_REFERRERS);
  if (referrers.length === 0) return { none: true };
  let problem = '';
  for (const referrer of referrers) {
    try {
      const summary = parseStatement(await verifiedPayload(await attestationBundle(store, referrer, expected.indexDigest), policy));
      const problems = provenanceProblems(summary, expected, files && (await files()));
      if (problems.length === 0) return { verified: summary };
      problem = problems[0];
    } catch (error) {
      problem = (error as Error).message;
    }
  }
  return { rejected: problem };
}

/** The Sigstore bundle (parsed JSON) an attestation artifact holds, every byte verified against its digest. */
async function attestationBundle(store: AttestationStore, referrer: Descriptor, subject: string): Promise<unknown> {
  const artifact = await store.artifact(referrer);
  if (artifact.subject?.digest !== subject) throw new RemoteError(`the attestation ${referrer.digest} is about ${artifact.subject?.digest ?? 'nothing'}, not the image ${subject}`);
  const layer = artifact.layers?.[0];
  if (!layer) throw new RemoteError(`the attestation ${referrer.digest} holds no bundle`);
  try {
    return JSON.parse((await store.blob(layer, MAX_BUNDLE)).toString('utf8'));
  } catch (error) {
    throw error instanceof SyntaxError ? new RemoteError(`the attestation ${referrer.digest}'s bundle is not JSON`) : error;
  }
}
