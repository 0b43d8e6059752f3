// An attestation as an OCI 1.1 artifact (image-spec 1.1 "artifacts guidance"): an image manifest
// with `artifactType` the Sigstore bundle type, the empty config, one layer (the bundle JSON) and
// `subject` = the image index it is about. How registries list it (the referrers API, else the
// referrers tag schema) is the client's business: client/referrers.ts.
import type { SerializedBundle } from '@sigstore/bundle';
import type { ReferrerDescriptor } from '../client/referrers.ts';
import { jsonBlob, MEDIA_TYPE, type Descriptor } from '../image/oci.ts';

/** The artifactType of a Sigstore bundle v0.3 (what cosign and GitHub's attestations use). */
export const BUNDLE_ARTIFACT_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
export const EMPTY_MEDIA_TYPE = 'application/vnd.oci.empty.v1+json';
/** The empty descriptor's content: `{}` (image-spec 1.1). */
export const EMPTY_CONFIG = jsonBlob(EMPTY_MEDIA_TYPE, {});
/** The artifact manifest's annotation saying when the attestation was made. */
const CREATED = 'org.opencontainers.image.created';

export type ArtifactDescriptor = ReferrerDescriptor;

export interface ArtifactManifest {
  schemaVersion: 2;
  mediaType: typeof MEDIA_TYPE.manifest;
  artifactType: string;
  config: Descriptor;
  layers: Descriptor[];
  subject: Descriptor;
  annotations?: Record<string, string>;
}

/**
 * The blobs (bundle, empty config, manifest: write them in this order) and the manifest's
 * descriptor, carrying artifactType and annotations as a referrers list shows them.
 */
export function attestationArtifact(bundle: SerializedBundle, subject: Descriptor, created: Date): { blobs: Buffer[]; descriptor: ArtifactDescriptor } {
  const layer = jsonBlob(BUNDLE_ARTIFACT_TYPE, bundle);
  const annotations = { [CREATED]: created.toISOString() };
  const manifest = jsonBlob(MEDIA_TYPE.manifest, {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.manifest,
    artifactType: BUNDLE_ARTIFACT_TYPE,
    config: EMPTY_CONFIG.descriptor,
    layers: [layer.descriptor],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations,
  } satisfies ArtifactManifest);
  return { blobs: [layer.bytes, EMPTY_CONFIG.bytes, manifest.bytes], descriptor: { ...manifest.descriptor, artifactType: BUNDLE_ARTIFACT_TYPE, annotations } };
}
