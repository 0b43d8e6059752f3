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
