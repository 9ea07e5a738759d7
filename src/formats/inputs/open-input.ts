/**
 * Turns what a user names into an input: `-` is standard input, an http(s) URL is read with Range requests,
 * anything else is a local file or block device.
 */
import type { ImageInput } from "./image-input.js";
import { FileInput } from "./file-input.js";
import { StreamInput } from "./stream-input.js";
import { urlForMessages } from "./url-for-messages.js";

export interface InputOptions {
  /** Cancels requests of remote inputs. */
  readonly signal?: AbortSignal;
}

/** True for names that openInput reads from somewhere other than a local path. */
export function isRemoteLocation(location: string): boolean {
  return /^https?:\/\//i.test(location);
}

/** True for names that openInput reads as a local file or device (not `-`, not a URL). */
export function isLocalLocation(location: string): boolean {
  return location !== "-" && !isRemoteLocation(location);
}

export async function openInput(location: string, options: InputOptions = {}): Promise<ImageInput> {
  if (location === "-") return new StreamInput(process.stdin, "-");
  if (isRemoteLocation(location)) {
    // Loaded only for a URL: node:https brings TLS and crypto, which a local conversion does without.
    const { openHttpInput } = await import("./http-input.js");
    return openHttpInput(location, { signal: options.signal });
  }
  return FileInput.open(location);
}

/**
 * How a location may be shown (in `info`, in results): a URL without its query string and user info, which may
 * carry credentials (an S3 presigned URL's signature).
 */
export function locationForMessages(location: string): string {
  if (!isRemoteLocation(location)) return location;
  try {
    return urlForMessages(new URL(location));
  } catch {
    return "(a URL that does not parse)";
  }
}
