// Reads a stored image's layer back with the reference estargz reader (tools/bin/estargz-check,
// built by scripts/ensure-tools.js from Debian's stargz-snapshotter sources).
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { resolveLayer } from '../../builder/image-info.ts';
import { ImageLayout } from '../../image/layout.ts';
import { ANNOTATION, type ImageManifest, type ImageIndex } from '../../image/oci.ts';
import { ROOT } from './cli.ts';

export const ESTARGZ_CHECK = path.join(ROOT, 'tools/bin/estargz-check');

export interface CheckReport {
  tocDigest: string;
  diffId: string;
  uncompressedSize: number;
  files: number;
  dirs: number;
  chunks: number;
  bytes: number;
}

/** Verify the image `tag` points at; rejects with the checker's message on any mismatch. */
export async function verifyStoredImage(store: string, image: string, tag: string): Promise<CheckReport> {
  const layout = new ImageLayout(store, image);
  const resolved = await resolveLayer(layout, tag);
  if (!resolved) throw new Error(`${image}:${tag} is not in ${store}`);
  const index = await layout.readJson<ImageIndex>(resolved.index.digest);
  const manifest = await layout.readJson<ImageManifest>(index.manifests[0].digest);
  const config = await layout.readJson<{ rootfs: { diff_ids: string[] } }>(manifest.config.digest);
  const layer = resolved.layer;
  const { stdout } = await promisify(execFile)(
    ESTARGZ_CHECK,
    [
      'verify',
      '-toc-digest', layer.annotations![ANNOTATION.tocDigest],
      '-diff-id', config.rootfs.diff_ids[0],
      '-uncompressed-size', layer.annotations![ANNOTATION.uncompressedSize],
      layout.blobPath(layer.digest),
    ],
    { maxBuffer: 1 << 20 },
  );
  return JSON.parse(stdout) as CheckReport;
}
