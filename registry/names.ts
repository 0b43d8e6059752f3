// What the OCI distribution spec accepts as a repository name, a tag and a digest.
// Names are case-insensitive here: they are lower-cased first, as the builder names images.

const COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
/** The general digest grammar (algorithm:encoded); only sha256 is stored. */
const ANY_DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const SHA256 = /^sha256:[a-f0-9]{64}$/;

export const MAX_NAME_LENGTH = 255;

/** The canonical (lower-cased) repository name, or undefined when it is not a valid one. */
export function normalizeName(raw: string): string | undefined {
  if (raw.length === 0 || raw.length > MAX_NAME_LENGTH) return undefined;
  const name = raw.toLowerCase();
  return NAME.test(name) ? name : undefined;
}

export function isTag(value: string): boolean {
  return TAG.test(value);
}

/** A digest this registry can hold: sha256 with 64 lower-case hex digits. */
export function isSha256Digest(value: string): boolean {
  return SHA256.test(value);
}

export function looksLikeDigest(value: string): boolean {
  return ANY_DIGEST.test(value);
}

export type Reference = { kind: 'tag'; tag: string } | { kind: 'digest'; digest: string };

/** A manifest reference: a tag or a sha256 digest; anything else is undefined. */
export function parseReference(value: string): Reference | undefined {
  if (isTag(value)) return { kind: 'tag', tag: value };
  if (isSha256Digest(value)) return { kind: 'digest', digest: value };
  return undefined;
}
