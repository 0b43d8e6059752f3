// The referrers of a manifest (OCI distribution-spec 1.1, "Listing Referrers"): the registry's
// referrers API, else the referrers tag schema, an image index tagged `sha256-<hex>` of the subject
// that whoever pushes a referrer keeps up to date. The shapes both the reading and the pushing side
// of the client use; neither list is content-addressed by the subject, so every descriptor is
// checked for shape here and its manifest against its digest when it is read.
import { isDigest, MEDIA_TYPE, type Descriptor, type ImageIndex } from '../image/oci.ts';
import { RemoteError } from './errors.ts';

/** A referrers list entry: a descriptor with the referrer's artifactType and annotations. */
export type ReferrerDescriptor = Descriptor & { artifactType?: string };

/** The referrers tag schema's tag for a subject digest: `sha256:<hex>` -> `sha256-<hex>`. */
export function referrersTag(subject: string): string {
  return subject.replace(':', '-');
}

/**
 * The descriptors of a referrers index (the API's answer or the referrers tag's index). Throws
 * RemoteError naming `what` when it is not an index or an entry lacks a string mediaType, a
 * sha256 digest or a whole-number size.
 */
export function referrerDescriptors(json: unknown, what: string): ReferrerDescriptor[] {
  const manifests = (json as ImageIndex | undefined)?.manifests;
  if (!Array.isArray(manifests)) throw new RemoteError(`${what} is not an image index`);
  for (const d of manifests as ReferrerDescriptor[]) {
    const shaped = d && typeof d.mediaType === 'string' && isDigest(String(d.digest)) && Number.isSafeInteger(d.size) && d.size >= 0;
    if (!shaped || (d.artifactType !== undefined && typeof d.artifactType !== 'string')) throw new RemoteError(`${what} lists a malformed descriptor: ${JSON.stringify(d).slice(0, 200)}`);
  }
  return manifests as ReferrerDescriptor[];
}

/** The referrers tag's index with `referrer` added, or undefined when `current` already lists it. */
export function withReferrer(current: ReferrerDescriptor[], referrer: ReferrerDescriptor): ImageIndex | undefined {
  if (current.some((d) => d.digest === referrer.digest)) return undefined;
  return { schemaVersion: 2, mediaType: MEDIA_TYPE.index, manifests: [...current, referrer] };
}
