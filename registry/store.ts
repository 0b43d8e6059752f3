// What the routes need from wherever images live. The routes only see this interface, so an
// object store (S3, R2) can stand behind the same API as the local folder of OCI image layouts.
import type { ByteRange, RangeSpec } from './range.ts';
import type { ReferrerDescriptor } from '../client/referrers.ts';

/** A manifest or index as stored: its exact bytes (what the digest covers) and media type. */
export interface ManifestRecord {
  digest: string;
  mediaType: string;
  bytes: Uint8Array;
}

export interface BlobStat {
  size: number;
  modified: Date;
}

/**
 * A stream body may also offer to write the same bytes straight into a Node writable (the
 * response): on Node the server uses that (file reads into reused buffers, no web stream; well
 * over twice the throughput), elsewhere the web stream is used. Only one of the two is ever read.
 * The pump writes the next chunk only once the writable took the previous one and never ends the
 * writable; it resolves true once every byte was taken, false once the writable closed first,
 * and rejects when the bytes cannot be read.
 */
export const NODE_PUMP = Symbol.for('depot-ai.registry.nodePump');
export type PumpTarget = NodeJS.WritableStream & { destroyed?: boolean };
export type NodePump = (out: PumpTarget) => Promise<boolean>;

/** A response body: bytes already in memory, or a stream (which the store closes on cancel). */
export type BlobBody = Uint8Array | StreamBody;
export type StreamBody = ReadableStream<Uint8Array> & { [NODE_PUMP]?: NodePump };

/** What a one-request read found: the blob's stat, and its bytes unless the condition held them back. */
export interface BlobRead {
  stat: BlobStat;
  /** `range` of the blob (the whole blob when absent), or null: not modified since the date asked. */
  body: BlobBody | null;
  range?: ByteRange;
}

export interface RegistryStore {
  /** Every repository name, sorted. */
  repositories(): Promise<string[]>;
  hasRepository(name: string): Promise<boolean>;
  /** The repository's tags, sorted; [] when it has none or does not exist. */
  tags(name: string): Promise<string[]>;
  /** The digest a tag points at. */
  resolveTag(name: string, tag: string): Promise<string | undefined>;
  /** A manifest or index by digest; undefined when absent or when the blob is not a manifest. */
  manifest(name: string, digest: string): Promise<ManifestRecord | undefined>;
  statBlob(name: string, digest: string): Promise<BlobStat | undefined>;
  /** The blob's bytes, or just `range` of them (inclusive); undefined when it has gone. */
  openBlob(name: string, digest: string, range?: ByteRange): Promise<BlobBody | undefined>;
  /**
   * Optional, for a store where a stat is a round trip of its own (R2: `get` with `range` and
   * `onlyIf`): the stat and the bytes in one request. `range` is resolved against the blob's size
   * by the store; with `modifiedSince`, the bytes come only when the blob was stored after it
   * (whole seconds, If-Modified-Since), else `body` is null. Undefined when the blob is absent or
   * the range starts past its end: the caller then answers by statBlob (a miss, or a 416 naming
   * the size).
   */
  readBlob?(name: string, digest: string, options: { range?: RangeSpec; modifiedSince?: Date }): Promise<BlobRead | undefined>;
  /** Descriptors of the manifests whose `subject` is `digest` (registry/referrers.ts); absent: none. */
  referrers?(name: string, digest: string): Promise<ReferrerDescriptor[]>;
  /** Present when the store can be written to (used by the pull-through cache). */
  readonly writer?: StoreWriter;
  close?(): Promise<void>;
}

/** Where bytes go before they become visible: nothing is readable until commit(). */
export interface BlobSink {
  write(chunk: Uint8Array): Promise<void>;
  /** Checks the digest and size, then makes the blob visible; throws (and discards) on mismatch. */
  commit(): Promise<void>;
  abort(): Promise<void>;
}

export interface StoreWriter {
  /**
   * A sink for the blob `digest` of repository `name`. `size`: its length in bytes when the
   * upstream announced it (Content-Length); a store may lay the blob out by it (R2's part size),
   * and then refuses a blob of any other length.
   */
  createBlob(name: string, digest: string, size?: number): Promise<BlobSink>;
  /** Store manifest bytes (verified against `digest`), optionally pointing `tag` at them. */
  putManifest(name: string, manifest: ManifestRecord, tag?: string): Promise<void>;
}

/** The media type a manifest declares, or the one its shape implies. */
export function manifestMediaType(value: unknown): string | undefined {
  if (!value || typeof value !== 'object') return undefined;
  const v = value as { mediaType?: unknown; manifests?: unknown; config?: unknown; schemaVersion?: unknown };
  if (typeof v.mediaType === 'string' && v.mediaType.length > 0) return v.mediaType;
  if (v.schemaVersion !== 2) return undefined;
  if (Array.isArray(v.manifests)) return 'application/vnd.oci.image.index.v1+json';
  if (v.config && typeof v.config === 'object') return 'application/vnd.oci.image.manifest.v1+json';
  return undefined;
}
