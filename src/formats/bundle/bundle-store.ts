/**
 * Where a bundle's files live: a local directory, or a bucket and prefix in S3 (providers/ec2 implements that
 * one). The bundle code reads and writes only through this, so it knows nothing of clouds. A bundle is a manifest
 * plus parts of at most 10 MiB each, so every file is moved whole: memory stays bounded by the number of parts in
 * flight, and a part is visible under its name only once it is all there.
 */
export interface BundleStore {
  /** For messages: a directory's path, "s3://bucket/prefix". */
  readonly label: string;
  /** Stores one file whole under `name`; visible under that name only on success (a temporary name, or one PUT). */
  put(name: string, data: Uint8Array, signal?: AbortSignal): Promise<void>;
  /** Reads one file whole; a file larger than `maxBytes` is refused before it is read. */
  get(name: string, maxBytes: number, signal?: AbortSignal): Promise<Uint8Array>;
  /** The file's size when it exists (a resumed upload skips parts already stored whole), else undefined. */
  stat(name: string, signal?: AbortSignal): Promise<{ readonly size: number } | undefined>;
  /** Removes a file; absent is not an error. */
  delete(name: string, signal?: AbortSignal): Promise<void>;
}
