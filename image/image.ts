// The image around the layer: a config and a manifest per platform (all sharing the one layer)
// and an OCI image index, labelled with where the model comes from and at which revision.
import { ANNOTATION, jsonBlob, MEDIA_TYPE, type Descriptor, type Platform } from './oci.ts';
import type { LayerResult } from './estargz.ts';

export const PLATFORMS: Platform[] = [
  { architecture: 'amd64', os: 'linux' },
  { architecture: 'arm64', os: 'linux' },
];

export interface ImageMetadata {
  /** The Hugging Face repository id, as in the catalog. */
  name: string;
  /** The revision, when known. */
  sha?: string;
  /** SOURCE_DATE_EPOCH, in seconds. */
  created: number;
}

export interface ImageBlobs {
  /** JSON blobs (configs, manifests, the index) to write before the index is tagged. */
  blobs: Buffer[];
  index: Descriptor;
  layer: Descriptor;
}

export function imageLabels(meta: ImageMetadata): Record<string, string> {
  const labels: Record<string, string> = { [ANNOTATION.source]: `https://huggingface.co/${meta.name}` };
  if (meta.sha) labels[ANNOTATION.revision] = meta.sha;
  return labels;
}

export function assembleImage(layer: LayerResult, meta: ImageMetadata): ImageBlobs {
  const labels = imageLabels(meta);
  const created = new Date(meta.created * 1000).toISOString().replace('.000Z', 'Z');
  const layerDescriptor: Descriptor = {
    mediaType: MEDIA_TYPE.layerGzip,
    digest: layer.digest,
    size: layer.size,
    annotations: {
      [ANNOTATION.tocDigest]: layer.tocDigest,
      [ANNOTATION.uncompressedSize]: String(layer.uncompressedSize),
    },
  };
  const blobs: Buffer[] = [];
  const manifests = PLATFORMS.map((platform) => {
    const config = jsonBlob(MEDIA_TYPE.config, {
      created,
      architecture: platform.architecture,
      os: platform.os,
      config: { Labels: labels },
      rootfs: { type: 'layers', diff_ids: [layer.diffId] },
      history: [{ created, created_by: `depot.ai: COPY ${meta.name} /` }],
    });
    const manifest = jsonBlob(MEDIA_TYPE.manifest, {
      schemaVersion: 2,
      mediaType: MEDIA_TYPE.manifest,
      config: config.descriptor,
      layers: [layerDescriptor],
      annotations: labels,
    });
    blobs.push(config.bytes, manifest.bytes);
    return { ...manifest.descriptor, platform, annotations: labels };
  });
  const index = jsonBlob(MEDIA_TYPE.index, { schemaVersion: 2, mediaType: MEDIA_TYPE.index, manifests, annotations: labels });
  blobs.push(index.bytes);
  return { blobs, index: { ...index.descriptor, annotations: labels }, layer: layerDescriptor };
}
