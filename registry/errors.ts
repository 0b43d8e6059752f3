// OCI distribution-spec error bodies: {"errors":[{"code","message","detail"}]}.

export type ErrorCode =
  | 'BLOB_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'NAME_INVALID'
  | 'NAME_UNKNOWN'
  | 'PAGINATION_NUMBER_INVALID'
  | 'RANGE_INVALID'
  | 'TAG_INVALID'
  | 'UNSUPPORTED'
  | 'NOT_FOUND'
  | 'UNKNOWN';

export class RegistryError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly detail?: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export function errorBody(code: ErrorCode, message: string, detail?: unknown): string {
  return JSON.stringify({ errors: [{ code, message, ...(detail === undefined ? {} : { detail }) }] });
}

export const nameInvalid = (name: string) =>
  new RegistryError(400, 'NAME_INVALID', 'invalid repository name', { name });
export const nameUnknown = (name: string) =>
  new RegistryError(404, 'NAME_UNKNOWN', 'repository name not known to registry', { name });
export const manifestUnknown = (name: string, reference: string) =>
  new RegistryError(404, 'MANIFEST_UNKNOWN', 'manifest unknown', { name, reference });
export const blobUnknown = (name: string, digest: string) =>
  new RegistryError(404, 'BLOB_UNKNOWN', 'blob unknown to registry', { name, digest });
export const digestInvalid = (digest: string) =>
  new RegistryError(400, 'DIGEST_INVALID', 'provided digest is not a valid sha256 digest', { digest });
export const unsupported = (method: string) =>
  new RegistryError(405, 'UNSUPPORTED', 'this registry is read-only', { method }, { Allow: 'GET, HEAD' });
export const paginationInvalid = (n: string) =>
  new RegistryError(400, 'PAGINATION_NUMBER_INVALID', 'invalid number of results requested', { n });
export const notFound = (path: string) =>
  new RegistryError(404, 'NOT_FOUND', 'not an OCI distribution endpoint', { path });
export const rangeInvalid = (range: string, size: number) =>
  new RegistryError(416, 'RANGE_INVALID', 'requested range not satisfiable', { range, size }, {
    'Content-Range': `bytes */${size}`,
  });
/** RFC 9110 §15.5.13: an If-Match or If-Unmodified-Since that does not hold (the spec defines no code for it). */
export const preconditionFailed = (etag: string) =>
  new RegistryError(412, 'UNKNOWN', 'precondition failed: If-Match or If-Unmodified-Since does not hold', { etag });
export const upstreamFailed = (detail: unknown) =>
  new RegistryError(502, 'UNKNOWN', 'upstream registry failed', detail);
