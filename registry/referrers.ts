// The referrers API (OCI distribution-spec 1.1, "Listing Referrers"): GET /v2/<name>/referrers/<digest>
// answers an image index of descriptors of the manifests whose `subject` is that digest, each with
// its artifactType (the manifest's, else its config's media type) and annotations; with
// `?artifactType=` only those of that type, and the OCI-Filters-Applied header saying so.
import type { ReferrerDescriptor } from '../client/referrers.ts';
import type { ManifestRecord } from './store.ts';

export const REFERRERS_MEDIA_TYPE = 'application/vnd.oci.image.index.v1+json';

const decoder = new TextDecoder();

/** The descriptor a referrers list shows for `record`, or undefined when its subject is not `subject`. */
export function referrerDescriptor(record: ManifestRecord, subject: string): ReferrerDescriptor | undefined {
  let manifest: { artifactType?: unknown; config?: { mediaType?: unknown }; subject?: { digest?: unknown }; annotations?: Record<string, string> };
  try {
    manifest = JSON.parse(decoder.decode(record.bytes));
  } catch {
    return undefined;
  }
  if (manifest?.subject?.digest !== subject) return undefined;
  const artifactType = typeof manifest.artifactType === 'string' ? manifest.artifactType : typeof manifest.config?.mediaType === 'string' ? manifest.config.mediaType : undefined;
  return {
    mediaType: record.mediaType,
    digest: record.digest,
    size: record.bytes.length,
    ...(artifactType ? { artifactType } : {}),
    ...(manifest.annotations ? { annotations: manifest.annotations } : {}),
  };
}

/** The referrers index body and headers for `descriptors`, filtered by `artifactType` when given. */
export function referrersIndex(descriptors: ReferrerDescriptor[], artifactType: string | undefined): { body: string; headers: Record<string, string> } {
  const manifests = artifactType === undefined ? descriptors : descriptors.filter((d) => d.artifactType === artifactType);
  return {
    body: JSON.stringify({ schemaVersion: 2, mediaType: REFERRERS_MEDIA_TYPE, manifests }),
    headers: { 'Content-Type': REFERRERS_MEDIA_TYPE, ...(artifactType === undefined ? {} : { 'OCI-Filters-Applied': 'artifactType' }) },
  };
}

/** The digest a manifest names as its `subject` (OCI 1.1), if any. */
export function subjectOf(manifest: ManifestRecord): string | undefined {
  try {
    const digest = (JSON.parse(decoder.decode(manifest.bytes)) as { subject?: { digest?: unknown } }).subject?.digest;
    return typeof digest === 'string' && /^sha256:[0-9a-f]{64}$/.test(digest) ? digest : undefined;
  } catch {
    return undefined;
  }
}
