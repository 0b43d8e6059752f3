// Image references as docker, skopeo and crane write them: REGISTRY/REPOSITORY[:TAG][@DIGEST].
import { isDigest } from '../image/oci.ts';
import { RemoteError } from './errors.ts';

export interface ImageReference {
  registry: string;
  repository: string;
  /** A tag or a digest (the digest wins when both are given: it pins the content). */
  reference: string;
}

const REPOSITORY = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;

/**
 * `REGISTRY/IMAGE[:TAG][@sha256:HEX]` -> its parts; the registry is the first part and must look
 * like a host (a dot, a port or `localhost`). The repository is lower-cased (Hub names keep their
 * case, image names do not). Throws RemoteError naming what is wrong.
 */
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
    if (!isDigest(reference)) throw new RemoteError(`"${text}": "${reference}" is not a sha256:<64 hex> digest`);
  }
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    const tag = rest.slice(colon + 1);
    if (!TAG.test(tag)) throw new RemoteError(`"${text}": "${tag}" is not a valid tag`);
    if (at < 0) reference = tag;
    rest = rest.slice(0, colon);
  }
  const repository = rest.toLowerCase();
  if (!REPOSITORY.test(repository)) throw new RemoteError(`"${text}" names no valid image repository`);
  return { registry, repository, reference };
}
