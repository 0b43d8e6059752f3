// The seam between the site and the image data: the store reader the builder, the CLI and the
// registry share, or the same data fetched from a registry (DEPOT_REGISTRY_URL). A model that has
// not been built yields undefined and its page still renders (placeholder file path, no digest).
export { readImageInfo, readRemoteImageInfo, type ImageFile, type ImageInfo } from '../../builder/image-info.ts';
