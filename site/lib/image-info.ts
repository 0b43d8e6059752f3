// The seam between the site and the image store: the one store reader the builder, the CLI and
// the registry share. A model that has not been built yields undefined and its page still renders
// (placeholder file path, no digest).
export { readImageInfo, type ImageFile, type ImageInfo } from '../../builder/image-info.ts';
