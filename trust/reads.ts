// Every registry read `depot-ai verify` makes, in one place, each checked against its digest before
// it is used: the image index, its first platform manifest, the layer's eStargz TOC (by range
// requests), and the attestations that refer to the index (referrers API, else the referrers tag).
// Over client/remote.ts's RegistryClient; swapping in another client touches only this file.
import { RegistryClient, RemoteError } from '../client/remote.ts';
import { registryCredentials } from '../client/auth.ts';
import { ANNOTATION, MEDIA_TYPE, sha256Digest, type Descriptor, type ImageIndex, type ImageManifest } from '../image/oci.ts';
import { readToc } from '../image/toc.ts';
import { tocFileDigests } from './provenance.ts';
import { BUNDLE_ARTIFACT_TYPE, referrersTag, type ArtifactDescriptor, type ArtifactManifest } from './artifact.ts';

/** A Sigstore bundle is a few KiB; anything much larger is not one. */
const MAX_BUNDLE = 4 * 1024 * 1024;

export interface RemoteImage {
  indexDigest: string;
  index: ImageIndex;
  /** Path -> `sha256:<hex>` of every regular file, from the layer's TOC. */
  files(): Promise<Record<string, string>>;
  /** The Sigstore bundles (parsed JSON) attached to the index, verified against their digests. */
  attestations(): Promise<unknown[]>;
}

/**
 * `registry/repository:reference` (a tag or a digest), which must be an OCI image index; the
 * credentials are the push credentials for `registry` (client/auth.ts). Throws RemoteError when
 * it is unreachable, unknown, not an index, or answers bytes that do not match their digest.
 */
export async function openRemoteImage(registry: string, repository: string, reference: string, insecure: boolean): Promise<RemoteImage> {
  const client = new RegistryClient(registry, insecure, await registryCredentials(registry));
  const top = await client.manifest(repository, reference);
  if (reference.startsWith('sha256:') && top.digest !== reference) throw new RemoteError(`${registry}/${repository}@${reference} answered content with digest ${top.digest}`);
  if (!('manifests' in top.json)) throw new RemoteError(`${registry}/${repository}:${reference} is not an image index`);
  const index = top.json;
  const manifestAt = async (digest: string) => {
    const got = await client.manifest(repository, digest);
    if (got.digest !== digest) throw new RemoteError(`${registry}/${repository}@${digest} answered content with digest ${got.digest}`);
    return got.json;
  };
  let files: Promise<Record<string, string>> | undefined;
  return {
    indexDigest: top.digest,
    index,
    files() {
      return (files ??= layerFiles());
    },
    attestations,
  };

  async function layerFiles(): Promise<Record<string, string>> {
    const first = index.manifests[0];
    if (!first) throw new RemoteError(`${registry}/${repository}:${reference} is an empty index`);
    const layer = ((await manifestAt(first.digest)) as ImageManifest).layers[0];
    const found = layer && (await readToc((offset, length) => client.readRange(repository, layer, offset, length), layer.size));
    if (!found) throw new RemoteError(`${registry}/${repository}:${reference} has no eStargz layer`);
    // The TOC is trusted only when it is the one the manifest's annotation names.
    const expected = layer.annotations?.[ANNOTATION.tocDigest];
    if (found.tocDigest !== expected) throw new RemoteError(`the TOC of ${layer.digest} has digest ${found.tocDigest}, not ${expected}`);
    return tocFileDigests(found.toc);
  }

  async function attestations(): Promise<unknown[]> {
    const bundles: unknown[] = [];
    for (const d of await referrers(client, repository, top.digest)) {
      if (d.artifactType !== BUNDLE_ARTIFACT_TYPE) continue;
      const artifact = (await manifestAt(d.digest)) as unknown as ArtifactManifest;
      if (artifact.subject?.digest !== top.digest) continue;
      const layer = artifact.layers?.[0];
      if (!layer || layer.size > MAX_BUNDLE) throw new RemoteError(`attestation ${d.digest} has no bundle of at most ${MAX_BUNDLE} bytes`);
      bundles.push(JSON.parse((await blobBytes(client, repository, layer)).toString('utf8')));
    }
    return bundles;
  }
}

/** The referrers of `digest`: the referrers API when the registry has it, else the referrers tag. */
async function referrers(client: RegistryClient, repository: string, digest: string): Promise<ArtifactDescriptor[]> {
  const api = await client.send('GET', `${repository}/referrers/${digest}?artifactType=${encodeURIComponent(BUNDLE_ARTIFACT_TYPE)}`, { headers: { Accept: MEDIA_TYPE.index }, accept: (s) => s === 200 || s === 404 });
  const fallback = api.status === 404 ? (await api.body?.cancel(), await client.send('GET', `${repository}/manifests/${referrersTag(digest)}`, { headers: { Accept: MEDIA_TYPE.index }, accept: (s) => s === 200 || s === 404 })) : api;
  if (fallback.status === 404) {
    await fallback.body?.cancel();
    return [];
  }
  const bytes = await bounded(fallback, MAX_BUNDLE);
  return ((JSON.parse(bytes.toString('utf8')) as ImageIndex).manifests ?? []) as ArtifactDescriptor[];
}

async function blobBytes(client: RegistryClient, repository: string, blob: Descriptor): Promise<Buffer> {
  const bytes = await bounded(await client.send('GET', `${repository}/blobs/${blob.digest}`), blob.size);
  if (bytes.length !== blob.size || sha256Digest(bytes) !== blob.digest) throw new RemoteError(`blob ${blob.digest} of ${repository} does not match its digest`);
  return bytes;
}

/** The response body, refusing one longer than `max` bytes. */
async function bounded(response: Response, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of response.body ?? []) {
    length += chunk.length;
    if (length > max) throw new RemoteError(`${response.url}: more than ${max} bytes`);
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}
