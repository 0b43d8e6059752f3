// Attaching a signed attestation beside an image: into the store's OCI layout (an untagged
// index.json entry, which `serve` lists through the referrers API) and to any registry through
// the client's Pusher (the referrers API where the registry has it, else the referrers tag).
import type { KeyObject } from 'node:crypto';
import type { SerializedBundle } from '@sigstore/bundle';
import packageJson from '../package.json' with { type: 'json' };
import type { ImageLayout } from '../image/layout.ts';
import { fileReadAt } from '../image/read-at.ts';
import { readToc } from '../image/toc.ts';
import { resolveLayer } from '../builder/image-info.ts';
import type { Descriptor } from '../image/oci.ts';
import type { Toc } from '../image/estargz.ts';
import type { Pusher } from '../client/push.ts';
import { attestationArtifact, type ArtifactDescriptor } from './artifact.ts';
import { provenanceStatement, tocFileDigests } from './provenance.ts';
import { signStatement } from './signing.ts';

/** Write the attestation artifact for `subject` into the layout; returns its descriptor. */
export async function storeAttestation(layout: ImageLayout, bundle: SerializedBundle, subject: Descriptor, created: Date): Promise<ArtifactDescriptor> {
  const { blobs, descriptor } = attestationArtifact(bundle, subject, created);
  for (const blob of blobs) await layout.writeBlob(blob);
  await layout.addManifest(descriptor);
  return descriptor;
}

export interface AttestOptions {
  /** The catalog entry as built. */
  entry: { name: string; sha: string; tag: string };
  /** The image name as pulled (e.g. `depot.ai/gpt2`): the statement's subject name. */
  imageName: string;
  /** A local ECDSA P-256 key; without one, keyless Sigstore through the CI's OIDC token. */
  signingKey?: KeyObject;
  startedOn: Date;
  /** Where the image was pushed, to attach the attestation there too. */
  push?: { pusher: Pusher; repository: string };
}

/** What a provenance is about: the image index, and its eStargz layer's TOC (the files' digests). */
export interface AttestSubject {
  index: Descriptor;
  toc: Toc;
}

/** The subject of `layout:tag`: its index and the TOC read from the layer in the layout. Error when absent or not eStargz. */
export async function layoutSubject(layout: ImageLayout, tag: string): Promise<AttestSubject> {
  const found = await resolveLayer(layout, tag);
  if (!found) throw new Error(`${layout.image}:${tag} is not in the store ${layout.store}`);
  const reader = await fileReadAt(layout.blobPath(found.layer.digest));
  let toc;
  try {
    toc = await readToc(reader.readAt, reader.size);
  } finally {
    await reader.close();
  }
  if (!toc) throw new Error(`${layout.image}:${tag} has no eStargz layer`);
  return { index: found.index, toc: toc.toc };
}

/**
 * Make, sign and attach the SLSA provenance of `subject` (built from `entry`): into `layout` (the
 * store's, or a scratch one when the image was streamed), and to the registry when pushed.
 * Returns the artifact and where it went ('store', 'referrers' or 'tag').
 */
export async function attestImage(layout: ImageLayout, subject: AttestSubject, options: AttestOptions): Promise<{ artifact: ArtifactDescriptor; where: string }> {
  const statement = provenanceStatement({
    image: options.imageName,
    indexDigest: subject.index.digest,
    entry: options.entry,
    files: tocFileDigests(subject.toc),
    ...ciBuilder(),
    startedOn: options.startedOn,
    finishedOn: new Date(),
  });
  const bundle = await signStatement(statement, options.signingKey);
  const artifact = await storeAttestation(layout, bundle, subject.index, new Date());
  const where = options.push ? await options.push.pusher.pushReferrer(layout, options.push.repository, artifact) : 'store';
  return { artifact, where };
}

/**
 * Who builds: in GitHub Actions the workflow file at its ref (the builder id SLSA asks for) and the
 * run as the invocation; elsewhere the depot-ai CLI. The version is depot-ai's package version.
 */
function ciBuilder(env: NodeJS.ProcessEnv = process.env): { builder: { id: string; version: string }; invocationId?: string } {
  const { version } = packageJson;
  const server = env.GITHUB_SERVER_URL ?? 'https://github.com';
  if (!env.GITHUB_WORKFLOW_REF || !env.GITHUB_RUN_ID) return { builder: { id: 'https://depot.ai/depot-ai-cli', version } };
  return {
    builder: { id: `${server}/${env.GITHUB_WORKFLOW_REF}`, version },
    invocationId: `${server}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}/attempts/${env.GITHUB_RUN_ATTEMPT ?? '1'}`,
  };
}
