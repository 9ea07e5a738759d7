/**
 * Turns what a user names into an input: `-` is standard input, an http(s) URL is read with Range requests,
 * anything else is a local file or block device.
 */
import type { ImageInput } from "./image-input.js";
import { FileInput } from "./file-input.js";
import { StreamInput } from "./stream-input.js";

export interface InputOptions {
  /** Cancels requests of remote inputs. */
  readonly signal?: AbortSignal;
}

/** True for names that openInput reads from somewhere other than a local path. */
export function isRemoteLocation(location: string): boolean {
  return /^https?:\/\//i.test(location);
}

export async function openInput(location: string, _options: InputOptions = {}): Promise<ImageInput> {
  if (location === "-") return new StreamInput(process.stdin, "-");
  return FileInput.open(location);
}
