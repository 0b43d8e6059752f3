// The seam between the site and the image data: the store reader the builder, the CLI and the
// registry share, or the same data fetched from a registry (DEPOT_REGISTRY_URL). A model that has
// not been built yields undefined and its page still renders (placeholder file path, no digest);
// so does one whose image is labelled with another repository or revision than its entry.
export { readImageInfo, readRemoteImageInfo, readRemoteTagDigest, readTagDigest, type ImageFile, type ImageInfo } from '../../builder/image-info.ts';

/**
 * Why the image read for a catalog entry is not that entry's (its index's source label is not
 * the entry's Hub repository, or its revision label not the entry's sha), or undefined when it is.
 */
export function entryImageProblem(entry: { name: string; sha: string }, info: { image: string; tag: string; source?: string; revision?: string }): string | undefined {
  const source = `https://huggingface.co/${entry.name}`;
  if (info.source !== source || info.revision !== entry.sha) {
    return `${info.image}:${info.tag} is labelled ${JSON.stringify(info.source ?? null)} at revision ${JSON.stringify(info.revision ?? null)}, not ${source} at ${entry.sha}`;
  }
  return undefined;
}

/**
 * Why the revision tag (`<image>:<sha>`, which never moves) cannot be offered for an image whose
 * catalog tag holds the index `indexDigest`: it is not there (yet), or it holds another index
 * (`revisionDigest`). Undefined when it holds that same index.
 */
export function revisionTagProblem(image: string, sha: string, indexDigest: string, revisionDigest: string | undefined): string | undefined {
  if (revisionDigest === indexDigest) return undefined;
  if (revisionDigest === undefined) return `${image}:${sha} is not there yet`;
  return `${image}:${sha} holds ${revisionDigest}, not ${indexDigest}`;
}
