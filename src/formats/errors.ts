/**
 * The format engine's errors, so callers (CLI, workflows) can tell a hostile or unsupported image from an I/O
 * failure without matching on message text. Messages name the file and what was wrong, never just "invalid".
 * They extend the one ChromogenicError of src/util/errors.ts (re-exported here with the two errors every layer
 * throws, usage and cancellation).
 */
import { ChromogenicError } from "../util/errors.js";

export { ChromogenicError, UsageError, AbortedError } from "../util/errors.js";

/** The image's metadata is malformed, truncated, out of bounds or beyond a safety limit. */
export class CorruptImageError extends ChromogenicError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, "ECORRUPT", options);
  }
}

/** A valid image using a feature chromogenic does not implement (e.g. encryption). */
export class UnsupportedFeatureError extends ChromogenicError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, "EUNSUPPORTED", options);
  }
}

/** The image names another file (backing file, data file, extent) the caller has not allowed. */
export class ReferenceRefusedError extends ChromogenicError {
  constructor(message: string) {
    super(message, "EREFUSED");
  }
}

/**
 * The file is in a format chromogenic recognises but does not read (QED, LUKS, a gzip file, …): refused by
 * name rather than taken for a raw disk. Opening it with format "raw" says it is raw and is not refused.
 */
export class UnreadableFormatError extends ChromogenicError {
  constructor(
    message: string,
    /** The format's name, as `recogniseForeignFormat` reports it ("QED", "gzip"). */
    readonly format: string,
  ) {
    super(message, "EUNREADABLEFORMAT");
  }
}

/**
 * Reading an image held by a remote server failed: the server refused (a status other than success), the
 * connection failed past the retries, or the reply broke the protocol. `status` is the HTTP status, when there
 * was one. Messages name the URL without its query string, which may carry credentials.
 */
export class RemoteInputError extends ChromogenicError {
  constructor(
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, "EREMOTE", options);
  }
}

/**
 * A remote image changed while it was being read (its ETag, Last-Modified or size differs from the first
 * reply's): the bytes already read and those still to come belong to different images, so nothing read can be
 * trusted. Starting over reads the new image.
 */
export class InputChangedError extends ChromogenicError {
  constructor(message: string) {
    super(message, "ECHANGED");
  }
}

/**
 * Another process is using the image in a way this use cannot share: a writer while we read or write it, a reader
 * while we write it (qemu's image locks, which qemu-img and chromogenic both take). The message names the
 * processes when they can be seen.
 */
export class ImageInUseError extends ChromogenicError {
  constructor(message: string) {
    super(message, "EINUSE");
  }
}
