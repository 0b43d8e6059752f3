// A minimal pull client for any OCI registry: manifests, blobs and byte ranges, with the
// anonymous bearer-token dance public registries ask for (`WWW-Authenticate: Bearer realm=…`).
import { MEDIA_TYPE, type Descriptor, type ImageIndex, type ImageManifest } from './oci.ts';

const MANIFEST_ACCEPT = [MEDIA_TYPE.index, MEDIA_TYPE.manifest, 'application/vnd.docker.distribution.manifest.list.v2+json', 'application/vnd.docker.distribution.manifest.v2+json'].join(', ');

export class RemoteError extends Error {}

export interface ImageReference {
  registry: string;
  repository: string;
  /** A tag or a digest. */
  reference: string;
}

/** `REGISTRY/IMAGE[:TAG|@DIGEST]`; the registry is the first part and must look like a host. */
export function parseImageReference(text: string): ImageReference {
  const slash = text.indexOf('/');
  const registry = text.slice(0, slash);
  if (slash < 0 || !/[.:]|^localhost$/.test(registry)) throw new RemoteError(`"${text}" must start with a registry host, e.g. depot.ai/gpt2`);
  let rest = text.slice(slash + 1);
  let reference = 'latest';
  const at = rest.indexOf('@');
  if (at >= 0) {
    reference = rest.slice(at + 1);
    rest = rest.slice(0, at);
  } else {
    const colon = rest.lastIndexOf(':');
    if (colon > rest.lastIndexOf('/')) {
      reference = rest.slice(colon + 1);
      rest = rest.slice(0, colon);
    }
  }
  if (!rest) throw new RemoteError(`"${text}" names no image`);
  return { registry, repository: rest.toLowerCase(), reference };
}

export class RegistryClient {
  private token: string | undefined;
  /** Bytes of response bodies read so far (what a lazy pull costs). */
  bytesFetched = 0;

  constructor(
    readonly registry: string,
    private readonly insecure = false,
  ) {}

  private url(path: string): string {
    return `${this.insecure ? 'http' : 'https'}://${this.registry}/v2/${path}`;
  }

  private async request(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Response> {
    const send = () => fetch(this.url(path), { method, headers: this.token ? { ...headers, Authorization: `Bearer ${this.token}` } : headers });
    let response: Response;
    try {
      response = await send();
      if (response.status === 401 && !this.token && (await this.authenticate(response))) response = await send();
    } catch (error) {
      throw new RemoteError(`cannot reach ${this.registry}: ${(error as Error & { cause?: Error }).cause?.message ?? (error as Error).message}`);
    }
    if (!response.ok) {
      const body = await response.text().catch(() => '');
      const message = /"message":"([^"]*)"/.exec(body)?.[1];
      throw new RemoteError(`${method} ${this.url(path)}: ${response.status}${message ? ` ${message}` : ''}`);
    }
    return response;
  }

  /** Anonymous token from the realm a 401 names; false when the registry asks for something else. */
  private async authenticate(challenge: Response): Promise<boolean> {
    const header = challenge.headers.get('www-authenticate') ?? '';
    if (!/^Bearer /i.test(header)) return false;
    const params = Object.fromEntries([...header.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (!params.realm) return false;
    const url = new URL(params.realm);
    if (params.service) url.searchParams.set('service', params.service);
    if (params.scope) url.searchParams.set('scope', params.scope);
    const response = await fetch(url);
    if (!response.ok) return false;
    const body = (await response.json()) as { token?: string; access_token?: string };
    this.token = body.token ?? body.access_token;
    return !!this.token;
  }

  async manifest(repository: string, reference: string): Promise<{ mediaType: string; json: ImageIndex | ImageManifest }> {
    const response = await this.request(`${repository}/manifests/${reference}`, { Accept: MANIFEST_ACCEPT });
    const text = await response.text();
    this.bytesFetched += Buffer.byteLength(text);
    const json = JSON.parse(text) as ImageIndex | ImageManifest;
    return { mediaType: response.headers.get('content-type') ?? json.mediaType ?? '', json };
  }

  /** The image manifest for linux/amd64 (or the first one) behind a tag or digest. */
  async imageManifest(repository: string, reference: string): Promise<ImageManifest> {
    const { json } = await this.manifest(repository, reference);
    if ('manifests' in json) {
      const chosen = json.manifests.find((m) => m.platform?.os === 'linux' && m.platform.architecture === 'amd64') ?? json.manifests[0];
      if (!chosen) throw new RemoteError(`${repository}:${reference} is an empty index`);
      return (await this.manifest(repository, chosen.digest)).json as ImageManifest;
    }
    return json;
  }

  async readRange(repository: string, blob: Descriptor, offset: number, length: number): Promise<Buffer> {
    const response = await this.request(`${repository}/blobs/${blob.digest}`, { Range: `bytes=${offset}-${offset + length - 1}` });
    const bytes = Buffer.from(await response.arrayBuffer());
    this.bytesFetched += bytes.length;
    if (response.status !== 206 || bytes.length !== length) throw new RemoteError(`${this.registry} did not answer a range request for ${blob.digest} (status ${response.status})`);
    return bytes;
  }

  /** The whole blob as a stream of bytes. */
  async openBlob(repository: string, blob: Descriptor): Promise<ReadableStream<Uint8Array>> {
    const response = await this.request(`${repository}/blobs/${blob.digest}`);
    const counter = new TransformStream<Uint8Array, Uint8Array>({
      transform: (chunk, controller) => {
        this.bytesFetched += chunk.length;
        controller.enqueue(chunk);
      },
    });
    return response.body!.pipeThrough(counter);
  }
}
