// Reading an eStargz TOC from the end of a layer: the footer says where the TOC member starts,
// and that member is a one-entry tar holding stargz.index.json. Works over any random-access
// reader, so the same code reads a layer on disk and one behind HTTP Range requests.
import { gunzipSync } from 'node:zlib';
import type { Toc } from './estargz.ts';
import { FOOTER_SIZE, parseFooter, TOC_TAR_NAME } from './footer.ts';
import { ANNOTATION, sha256Digest, type Descriptor } from './oci.ts';

/** The largest TOC read: its compressed member and the tar it inflates to (the JSON of a model with
 * a million files is well under this). */
export const MAX_TOC_BYTES = 64 * 1024 * 1024;

export type ReadAt = (offset: number, length: number) => Promise<Buffer>;

export interface LayerToc {
  toc: Toc;
  tocDigest: string;
  tocOffset: number;
}

/**
 * The TOC of the eStargz layer `layer`, trusted only as far as its descriptor vouches for it:
 * undefined when the layer is not eStargz or its descriptor has no toc.digest annotation (then
 * nothing vouches for a TOC, and only a whole-layer read verified against the layer digest can
 * tell what it holds). Throws Error when the TOC's digest is not the annotation's, RangeError as
 * readToc.
 */
export async function readVouchedToc(readAt: ReadAt, layer: Descriptor): Promise<LayerToc | undefined> {
  const vouched = layer.annotations?.[ANNOTATION.tocDigest];
  if (!vouched) return undefined;
  const found = await readToc(readAt, layer.size);
  if (found && found.tocDigest !== vouched) throw new Error(`${layer.digest}: its TOC has digest ${found.tocDigest}, the manifest's ${ANNOTATION.tocDigest} says ${vouched}: refusing it`);
  return found;
}

/**
 * The TOC of an eStargz layer of `size` bytes, or undefined when the layer is not eStargz.
 * Throws RangeError when the TOC member or what it inflates to exceeds MAX_TOC_BYTES.
 */
export async function readToc(readAt: ReadAt, size: number): Promise<LayerToc | undefined> {
  if (size < FOOTER_SIZE) return undefined;
  const tocOffset = parseFooter(await readAt(size - FOOTER_SIZE, FOOTER_SIZE));
  if (tocOffset === undefined || tocOffset >= size - FOOTER_SIZE) return undefined;
  const compressed = size - FOOTER_SIZE - tocOffset;
  if (compressed > MAX_TOC_BYTES) throw new RangeError(`the eStargz TOC is ${compressed} bytes compressed, more than the ${MAX_TOC_BYTES} allowed`);
  let tar: Buffer;
  try {
    tar = gunzipSync(await readAt(tocOffset, compressed), { maxOutputLength: MAX_TOC_BYTES });
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw new RangeError(`the eStargz TOC inflates to more than the ${MAX_TOC_BYTES} bytes allowed`);
    throw error;
  }
  const name = tar.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
  if (name !== TOC_TAR_NAME) return undefined;
  const length = Number.parseInt(tar.subarray(124, 136).toString('ascii').replace(/\0.*$/s, '').trim(), 8);
  const json = tar.subarray(512, 512 + length);
  return {
    toc: JSON.parse(json.toString('utf8')) as Toc,
    tocDigest: sha256Digest(json),
    tocOffset,
  };
}
