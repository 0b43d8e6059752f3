// Deflate settings chosen per gzip member from its own bytes, so compression keeps up with the
// network: text and JSON keep zlib's default level (what estargz.Build uses), near-random data
// such as model weights takes the run-length strategy (3x faster for the same ratio: deflate's
// string matching finds nothing in them) with long blocks, and data that does not shrink at all is stored.
// The choice reads only the bytes, so the same bytes always give the same member and digest.
import { constants, deflateRawSync } from 'node:zlib';

export interface DeflateSettings {
  level: number;
  strategy: number;
  /** zlib's memLevel (default 8): 9 doubles the symbols per deflate block. */
  memLevel?: number;
}

export const DEFAULT_DEFLATE: DeflateSettings = { level: 6, strategy: constants.Z_DEFAULT_STRATEGY };
// memLevel 9: blocks twice as long, fewer Huffman tables to build and send: on fp16 weights
// 15-20% faster than the default 8 and a slightly smaller output (0.9193 against 0.9208).
const RUN_LENGTH: DeflateSettings = { level: 6, strategy: constants.Z_RLE, memLevel: 9 };
const STORED: DeflateSettings = { level: 0, strategy: constants.Z_DEFAULT_STRATEGY };

/** Members smaller than this are compressed at the default: too small for the choice to matter. */
const MIN_CHOOSING = 256 * 1024;
const SAMPLES = 4;
const SAMPLE_SIZE = 16 * 1024;
/** The default level must win by this much on the sample to be worth its 3x cost. */
const DEFAULT_GAIN = 0.98;
/** Where even run-length coding saves less than this, the member is stored. */
const STORE_ABOVE = 0.995;

/**
 * The settings for one member: the default where deflate's string matching pays off on a sample
 * (four 16 KiB slices spread over the bytes), Z_RLE where it does not, level 0 (stored blocks)
 * where nothing shrinks. Every choice yields a standard RFC 1951 stream. Deterministic in `bytes`.
 */
export function chooseDeflate(bytes: Uint8Array): DeflateSettings {
  if (bytes.length < MIN_CHOOSING) return DEFAULT_DEFLATE;
  const step = Math.floor((bytes.length - SAMPLE_SIZE) / (SAMPLES - 1));
  const parts = Array.from({ length: SAMPLES }, (_, i) => bytes.subarray(i * step, i * step + SAMPLE_SIZE));
  const sample = Buffer.concat(parts);
  const runLength = deflateRawSync(sample, RUN_LENGTH).length;
  if (runLength >= STORE_ABOVE * sample.length) return STORED;
  const full = deflateRawSync(sample, DEFAULT_DEFLATE).length;
  return full < DEFAULT_GAIN * runLength ? DEFAULT_DEFLATE : RUN_LENGTH;
}
