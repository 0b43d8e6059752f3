// A small client for any OCI registry: manifests, blobs and byte ranges, answering the
// registry's auth challenges (anonymous or with credentials, Basic or Bearer: see auth.ts).
// `send` is the raw request the push client (push.ts) builds its uploads on.
import { AuthError, Authenticator, type Credentials } from './auth.ts';
import { MEDIA_TYPE, sha256Digest, type Descriptor, type ImageIndex, type ImageManifest } from '../image/oci.ts';

export const MANIFEST_ACCEPT = [MEDIA_TYPE.index, MEDIA_TYPE.manifest, 'application/vnd.docker.distribution.manifest.list.v2+json', 'application/vnd.docker.distribution.manifest.v2+json'].join(', ');

export class RemoteError extends Error {
  /** The HTTP status, when the registry answered. */
  readonly status?: number;

  constructor(message: string, options: { status?: number; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.status = options.status;
  }
}

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

export interface SendOptions {
  headers?: Record<string, string>;
  /** Made afresh for each attempt (a stream cannot be sent twice). */
  body?: () => BodyInit;
  /** Statuses that are answers, not errors (default: any 2xx). */
  accept?: (status: number) => boolean;
}

export class RegistryClient {
  private readonly auth: Authenticator;
  /** Bytes of response bodies read so far (what a lazy pull costs). */
  bytesFetched = 0;
  /** The scope asked for when challenged (default: whatever the registry names). */
  scope: string | undefined;

  constructor(
    readonly registry: string,
    private readonly insecure = false,
    credentials?: Credentials,
  ) {
    this.auth = new Authenticator(registry, credentials);
  }

  url(path: string): string {
    return `${this.insecure ? 'http' : 'https'}://${this.registry}/v2/${path}`;
  }

  /** One request to `/v2/<path>` (or an absolute upload URL), authenticated, with errors made one clear line. */
  async send(method: string, path: string, options: SendOptions = {}): Promise<Response> {
    const url = /^https?:/.test(path) ? path : this.url(path);
    const attempt = () => {
      const headers = { ...options.headers, ...(this.auth.authorization ? { Authorization: this.auth.authorization } : {}) };
      const body = options.body?.();
      return fetch(url, { method, headers, body, ...(body ? { duplex: 'half' } : {}) } as RequestInit);
    };
    let response: Response;
    try {
      response = await attempt();
      if (response.status === 401 && (await this.auth.answer(response, this.scope))) response = await attempt();
    } catch (error) {
      if (error instanceof AuthError) throw new RemoteError(error.message);
      const cause = (error as Error & { cause?: Error & { code?: string } }).cause;
      const hint = !this.insecure && /EPROTO|wrong version number|ssl/i.test(`${cause?.code} ${cause?.message}`) ? ' (plain HTTP? use --insecure)' : '';
      throw new RemoteError(`cannot reach ${this.registry}: ${cause?.message ?? (error as Error).message}${hint}`, { cause: error });
    }
    if (!(options.accept ?? ((status) => status >= 200 && status < 300))(response.status)) {
      const body = await response.text().catch(() => '');
      const code = /"code":"([^"]*)"/.exec(body)?.[1];
      const message = /"message":"([^"]*)"/.exec(body)?.[1];
      const what = response.status === 401 ? 'authentication failed' : response.status === 403 ? 'access denied' : `${response.status}`;
      throw new RemoteError(`${method} ${url}: ${what}${code ? ` ${code}` : ''}${message ? `: ${message}` : ''}`, { status: response.status });
    }
    return response;
  }

  private request(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Response> {
    return this.send(method, path, { headers });
  }

  /** A manifest or index, with the digest of its exact bytes. */
  async manifest(repository: string, reference: string): Promise<{ mediaType: string; digest: string; json: ImageIndex | ImageManifest }> {
    const response = await this.request(`${repository}/manifests/${reference}`, { Accept: MANIFEST_ACCEPT });
    const bytes = Buffer.from(await response.arrayBuffer());
    this.bytesFetched += bytes.length;
    const json = JSON.parse(bytes.toString('utf8')) as ImageIndex | ImageManifest;
    return { mediaType: response.headers.get('content-type') ?? json.mediaType ?? '', digest: sha256Digest(bytes), json };
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
