// The provenance the store holds for an image (what `build --attest` attached), as the site shows
// it. Read, not verified: the signature is checked by `depot-ai verify --provenance`.
import { ImageLayout } from '../image/layout.ts';
import { BUNDLE_ARTIFACT_TYPE, type ArtifactDescriptor, type ArtifactManifest } from './artifact.ts';
import { parseStatement, type ProvenanceSummary } from './provenance.ts';

/** The newest attestation about `indexDigest` in `store`'s layout of `image`, or undefined. */
export async function storedProvenance(store: string, image: string, indexDigest: string): Promise<ProvenanceSummary | undefined> {
  const layout = new ImageLayout(store, image);
  const artifacts = ((await layout.tagged()) as ArtifactDescriptor[]).filter((d) => d.artifactType === BUNDLE_ARTIFACT_TYPE);
  for (const d of artifacts.reverse()) {
    const manifest = await layout.readJson<ArtifactManifest>(d.digest);
    if (manifest.subject?.digest !== indexDigest || !manifest.layers?.[0]) continue;
    const bundle = await layout.readJson<{ dsseEnvelope?: { payload?: string } }>(manifest.layers[0].digest);
    if (!bundle.dsseEnvelope?.payload) continue;
    const summary = parseStatement(Buffer.from(bundle.dsseEnvelope.payload, 'base64'));
    if (summary.subject === indexDigest) return summary;
  }
  return undefined;
}
