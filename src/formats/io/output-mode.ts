/**
 * The permissions a new output is created with (the umask then applies, as to any new file). A disk image holds
 * everything its guest held, keys and password hashes included, so a converted copy must never be readable by
 * more users than the image it came from: it takes the read and write bits of its input (a 0600 input gives a
 * 0600 output, a 0644 one 0644 under the usual umask), never its execute or special bits.
 *
 * An input that is not a local file (a URL, standard input, an image in a cloud) tells nothing about who may read
 * it, and a presigned URL or a cloud's private image usually serves an image that is not public; its output is
 * then readable by its owner only (0600). One chmod widens it; a copy read by others meanwhile cannot be taken back.
 * (qemu-img creates every output 0644 under the umask.) An output that replaces a file keeps that file's owner,
 * group and mode instead: see replacing-output.ts.
 */
import { stat } from "node:fs/promises";
import { isLocalLocation } from "../inputs/open-input.js";

/** Owner read and write: for outputs of inputs whose readers are not known. */
export const PRIVATE_OUTPUT_MODE = 0o600;

/** The mode to create the output of `input` with (a local path, a URL, "-"), or of no file at all. */
export async function outputModeFor(input: string | undefined): Promise<number> {
  if (input === undefined || !isLocalLocation(input)) return PRIVATE_OUTPUT_MODE;
  return (await stat(input)).mode & 0o666;
}
