// What the image is built from: a list of files and each file's bytes in chunks. Sources
// (a folder, the Hub) implement it; the layer writer reads it.

export interface SourceFile {
  /** '/'-separated path relative to the model root. */
  path: string;
  size: number;
}

export interface ModelSource {
  /** Every regular file, in any order. */
  list(): Promise<SourceFile[]>;
  /**
   * The file's content in buffers of exactly `chunkSize` bytes (the last one shorter). Each buffer
   * belongs to the caller once yielded (the layer writer hands it to a compression thread).
   */
  chunks(file: SourceFile, chunkSize: number): AsyncIterable<Buffer>;
  /** Stop any work still running for this source (downloads ahead) and free what it holds. */
  close?(): Promise<void>;
}
