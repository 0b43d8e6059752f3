// Verified reads from any OCI registry (Distribution spec): manifests checked against the digest
// they were asked by (and the registry's Docker-Content-Digest, and the descriptor that named
// them), blobs streamed through a sha256 verifier, byte ranges checked for what was asked, an
// eStargz TOC only when it is the one the manifest names, referrers lists checked for shape.
import { isDigest, MEDIA_TYPE, sha256Digest, type Descriptor, type ImageIndex, type ImageManifest } from '../image/oci.ts';
import { readVouchedToc, type LayerToc } from '../image/toc.ts';
import { readBounded } from './body.ts';
import { RangeIgnored, RemoteError } from './errors.ts';
import { referrerDescriptors, referrersTag, type ReferrerDescriptor } from './referrers.ts';
import { Transport, type TransportOptions } from './transport.ts';
import { verifyingStream } from './verify.ts';

export { RangeIgnored, RemoteError } from './errors.ts';
export { parseImageReference, type ImageReference } from './reference.ts';

export const MANIFEST_ACCEPT = [MEDIA_TYPE.index, MEDIA_TYPE.manifest, 'application/vnd.docker.distribution.manifest.list.v2+json', 'application/vnd.docker.distribution.manifest.v2+json'].join(', ');
/** The largest manifest read (the Distribution spec lets registries refuse beyond 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export interface RemoteManifest {
  /** From the JSON's mediaType, else the Content-Type. */
  mediaType: string;
  /** sha256 of `bytes`, checked against every digest that named them. */
  digest: string;
  bytes: Buffer;
  json: ImageIndex | ImageManifest;
}

export class RegistryClient {
  readonly transport: Transport;

  constructor(
    readonly registry: string,
    options: TransportOptions = {},
  ) {
    this.transport = new Transport(registry, options);
  }

  /** Bytes of response bodies read so far (what a lazy pull costs). */
  get bytesFetched(): number {
    return this.transport.bytesFetched;
  }

  /**
   * The manifest or index `repository:reference` (a tag or a digest), at most 4 MiB. Its digest
   * must equal the reference when that is a digest, the Docker-Content-Digest header when the
   * registry sends one, and `expected` (digest and size) when a descriptor named it. Undefined
   * with `optional` when the registry answers 404; RemoteError otherwise.
   */
  async manifest(repository: string, reference: string, options: { expected?: Descriptor; optional?: boolean; scope?: string } = {}): Promise<RemoteManifest | undefined> {
    const response = await this.transport.send('GET', `${repository}/manifests/${reference}`, {
      headers: { Accept: MANIFEST_ACCEPT },
      scope: options.scope ?? pullScope(repository),
      accept: (s) => (s >= 200 && s < 300) || (options.optional === true && s === 404),
    });
    if (response.status === 404) {
      await response.body?.cancel().catch(() => {});
      return undefined;
    }
    const what = `the manifest ${this.registry}/${repository}${isDigest(reference) ? '@' : ':'}${reference}`;
    const bytes = await readBounded(response, options.expected ? Math.min(options.expected.size, MAX_MANIFEST_BYTES) : MAX_MANIFEST_BYTES, what);
    const digest = sha256Digest(bytes);
    const claimed = response.headers.get('docker-content-digest');
    const wanted = [isDigest(reference) && reference, claimed, options.expected?.digest].filter((d): d is string => !!d);
    for (const d of wanted) if (d !== digest) throw new RemoteError(`${what} has digest ${digest}, not ${d}: refusing it`);
    if (options.expected && bytes.length !== options.expected.size) throw new RemoteError(`${what} is ${bytes.length} bytes, its descriptor says ${options.expected.size}: refusing it`);
    let json: ImageIndex | ImageManifest;
    try {
      json = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw new RemoteError(`${what} is not JSON`);
    }
    if (!json || typeof json !== 'object' || !(Array.isArray((json as ImageIndex).manifests) || Array.isArray((json as ImageManifest).layers))) throw new RemoteError(`${what} is neither an image index nor an image manifest`);
    const mediaType = (typeof json.mediaType === 'string' && json.mediaType) || (response.headers.get('content-type') ?? '').split(';')[0].trim();
    return { mediaType, digest, bytes, json };
  }

  /**
   * The image manifest for linux/amd64 (else the first) behind a tag or digest, with the digest
   * of the index (or the lone manifest) that reference resolved to. A child manifest must match
   * the index's descriptor in digest and size.
   */
  async imageManifest(repository: string, reference: string): Promise<{ digest: string; manifest: ImageManifest }> {
    const top = (await this.manifest(repository, reference))!;
    if (!('manifests' in top.json)) return { digest: top.digest, manifest: top.json };
    const chosen = top.json.manifests.find((m) => m.platform?.os === 'linux' && m.platform.architecture === 'amd64') ?? top.json.manifests[0];
    if (!chosen || !isDigest(String(chosen.digest))) throw new RemoteError(`${repository}:${reference} is an index with no usable manifest`);
    const child = (await this.manifest(repository, chosen.digest, { expected: chosen }))!;
    if (!('layers' in child.json)) throw new RemoteError(`${repository}@${chosen.digest} is not an image manifest`);
    return { digest: top.digest, manifest: child.json };
  }

  /**
   * `length` bytes of `blob` from `offset` (an HTTP Range request, RFC 9110 §14): the answer must
   * be a 206 for exactly that range. The bytes are NOT checked against a digest (a range cannot
   * be); callers check what they decode (eStargz chunk digests, the TOC digest). RangeIgnored
   * when the registry answers 200 (it ignores Range: only a whole, verified read can work);
   * RemoteError otherwise.
   */
  async readRange(repository: string, blob: Descriptor, offset: number, length: number): Promise<Buffer> {
    const end = offset + length - 1;
    const response = await this.transport.send('GET', `${repository}/blobs/${blob.digest}`, { headers: { Range: `bytes=${offset}-${end}` }, scope: pullScope(repository) });
    const range = /^bytes (\d+)-(\d+)\//.exec(response.headers.get('content-range') ?? '');
    if (response.status !== 206 || !range || Number(range[1]) !== offset || Number(range[2]) !== end) {
      await response.body?.cancel().catch(() => {});
      const Failure = response.status === 200 ? RangeIgnored : RemoteError;
      throw new Failure(`${this.registry} did not answer the range ${offset}-${end} of ${blob.digest} (status ${response.status}${range ? `, ${range[0]}` : ''})`);
    }
    const bytes = await readBounded(response, length, `the range ${offset}-${end} of ${blob.digest}`);
    if (bytes.length !== length) throw new RemoteError(`${this.registry} sent ${bytes.length} bytes for the range ${offset}-${end} of ${blob.digest}`);
    return bytes;
  }

  /**
   * The eStargz TOC of `layer`, read by range requests (footer, then TOC), or undefined when the
   * layer is not eStargz or its descriptor names no TOC digest (a TOC nothing vouches for cannot
   * vouch for files). RemoteError when the TOC is not the one the descriptor's
   * `containerd.io/snapshot/stargz/toc.digest` annotation names, or cannot be read.
   */
  async layerToc(repository: string, layer: Descriptor): Promise<LayerToc | undefined> {
    let found;
    try {
      found = await readVouchedToc((offset, length) => this.readRange(repository, layer, offset, length), layer);
    } catch (error) {
      throw error instanceof RemoteError ? error : new RemoteError(`${layer.digest}: its eStargz TOC cannot be read: ${(error as Error).message}`);
    }
    if (!found) return undefined;
    if (!Array.isArray(found.toc?.entries)) throw new RemoteError(`${layer.digest}: its eStargz TOC has no entries list`);
    return found;
  }

  /**
   * The referrers of `subject` in `repository` (distribution-spec 1.1 "Listing Referrers"): the
   * referrers API, else (a 404: the registry has none) the referrers tag schema's `sha256-<hex>`
   * index, read as a verified manifest; [] when neither lists any. With `artifactType` only
   * referrers of that type: asked of the registry and applied again here (a registry may ignore
   * the filter). At most 4 MiB. RemoteError for a malformed list or a failed request.
   */
  async referrers(repository: string, subject: string, options: { artifactType?: string; scope?: string } = {}): Promise<ReferrerDescriptor[]> {
    if (!isDigest(subject)) throw new RemoteError(`${subject} is not a sha256 digest`);
    const what = `the referrers of ${this.registry}/${repository}@${subject}`;
    const scope = options.scope ?? pullScope(repository);
    const query = options.artifactType === undefined ? '' : `?artifactType=${encodeURIComponent(options.artifactType)}`;
    const api = await this.transport.send('GET', `${repository}/referrers/${subject}${query}`, { headers: { Accept: MEDIA_TYPE.index }, scope, accept: (s) => (s >= 200 && s < 300) || s === 404 });
    let listed: ReferrerDescriptor[];
    if (api.status === 404) {
      await api.body?.cancel().catch(() => {});
      const tagged = await this.manifest(repository, referrersTag(subject), { optional: true, scope });
      listed = tagged ? referrerDescriptors(tagged.json, `${what} (its ${referrersTag(subject)} tag)`) : [];
    } else {
      const bytes = await readBounded(api, MAX_MANIFEST_BYTES, what);
      let json: unknown;
      try {
        json = JSON.parse(bytes.toString('utf8'));
      } catch {
        throw new RemoteError(`${what} is not JSON`);
      }
      listed = referrerDescriptors(json, what);
    }
    return options.artifactType === undefined ? listed : listed.filter((d) => d.artifactType === options.artifactType);
  }

  /** The whole blob in memory, verified against its digest and size; RemoteError when it is larger than `max` bytes. */
  async blobBytes(repository: string, blob: Descriptor, max: number): Promise<Buffer> {
    const what = `the blob ${repository}@${blob.digest}`;
    if (!(blob.size <= max)) throw new RemoteError(`${what} is ${blob.size} bytes, more than the ${max} allowed`);
    return readBounded(new Response(await this.openBlob(repository, blob)), max, what);
  }

  /** The whole blob, verified as it streams: it errors instead of ending if digest or size is wrong. */
  async openBlob(repository: string, blob: Descriptor): Promise<ReadableStream<Uint8Array>> {
    const response = await this.transport.send('GET', `${repository}/blobs/${blob.digest}`, { scope: pullScope(repository) });
    if (!response.body) throw new RemoteError(`${this.registry} sent no body for ${blob.digest}`);
    return response.body.pipeThrough(verifyingStream(blob, `the blob ${repository}@${blob.digest}`));
  }
}

export function pullScope(repository: string): string {
  return `repository:${repository}:pull`;
}
