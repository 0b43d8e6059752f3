// What a Hub revision looks like, on its own (no YAML, no Node APIs) so every part can ask it,
// down to the registry bundled into the Cloudflare Worker.

/**
 * Whether `text` has the form of a Hub revision (a commit sha: 40 lower-case hex digits). A tag of
 * that form is a revision tag: set from the image's revision label only, and it never moves,
 * wherever it is written or cached.
 */
export function isRevision(text: string): boolean {
  return /^[0-9a-f]{40}$/.test(text);
}

/**
 * Whether `tag` has the form of a reserved tag that no catalog or build may set: a revision in any
 * case (40 hex digits) or the referrers tag fallback of the OCI Distribution spec 1.1
 * (`<alg>-<hex>`, e.g. `sha256-<64 hex>`), which names the artifacts whose subject is that digest.
 */
export function reservedTagKind(tag: string): 'revision' | 'referrers' | undefined {
  if (/^[0-9a-f]{40}$/i.test(tag)) return 'revision';
  if (/^sha(256|384|512)-/i.test(tag)) return 'referrers';
  return undefined;
}
