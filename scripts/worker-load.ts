// Copies a store folder (one OCI image layout per image) into an R2 bucket in R2Store's key
// layout: every blob (digest checked while it streams, multipart when large), then the manifests
// of index.json: tags, and referrers under their subject.
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { ImageLayout, listImages } from '../image/layout.ts';
import { ANNOTATION } from '../image/oci.ts';
import { blobKey, R2Store, type R2Bucket } from '../registry/r2-store.ts';

/** Load every image of `storeRoot` into `bucket`; resolves with the image names. Blobs already there are skipped. */
export async function loadStore(storeRoot: string, bucket: R2Bucket): Promise<string[]> {
  const store = new R2Store(bucket);
  const images = await listImages(storeRoot);
  for (const name of images) {
    const layout = new ImageLayout(storeRoot, name);
    const blobs = (await readdir(path.join(layout.dir, 'blobs', 'sha256'))).filter((f) => /^[0-9a-f]{64}$/.test(f));
    for (const hex of blobs) {
      const digest = `sha256:${hex}`;
      if (await bucket.head(blobKey(name, digest))) continue;
      const sink = await store.writer.createBlob(name, digest, (await stat(layout.blobPath(digest))).size);
      try {
        for await (const chunk of createReadStream(layout.blobPath(digest))) await sink.write(chunk as Buffer);
        await sink.commit();
      } catch (error) {
        await sink.abort();
        throw error;
      }
    }
    // Tagged entries get their tag; untagged ones (attestations) are listed under their subject.
    for (const d of await layout.tagged()) {
      await store.writer.putManifest(name, { digest: d.digest, mediaType: d.mediaType, bytes: new Uint8Array(await layout.readBlob(d.digest)) }, d.annotations?.[ANNOTATION.refName]);
    }
  }
  return images;
}
