/**
 * What a bundle holds from an image file: by default the file's bytes as they are (euca-bundle-image's way,
 * whatever the file is), or with `format: "raw"` the disk the engine reads from it, its format detected (or
 * named by `inputFormat`), so a qcow2 is bundled as the raw disk Eucalyptus and EC2 boot.
 */
import type { ImageSource } from "../types.js";
import { UsageError } from "../errors.js";
import { openImage } from "../engine/open-image.js";

export interface BundleSourceOptions {
  /** The format inside the bundle: only "raw" (a disk); absent for the file's bytes as they are. */
  readonly format?: string;
  /** With `format`: the input's format, skipping detection. */
  readonly inputFormat?: string;
}

export async function openBundleSource(path: string, options: BundleSourceOptions = {}): Promise<ImageSource> {
  if (options.format !== undefined && options.format !== "raw") {
    // A bundle holds what Eucalyptus and EC2 boot: a raw disk. Another format would need a sequential writer
    // inside the tar, which no cloud would boot from a bundle anyway.
    throw new UsageError(`--format ${options.format}: a bundle holds a raw disk (--format raw)`);
  }
  if (options.inputFormat !== undefined && options.format === undefined) {
    throw new UsageError("--input-format goes with --format raw");
  }
  // The file's bytes as they are: opened as raw, which reads a file as its own bytes.
  const { source } = await openImage(path, { format: options.format === undefined ? "raw" : options.inputFormat });
  return source;
}
