/**
 * What an input holds, told before anything reads it for good: an OVA (an appliance — descriptor, manifest and
 * disks in a tar — which the OVA reader shows and converts) or a disk image (which a format driver reads).
 * imageInfo and convertFile ask this first, so a program and the CLI see an OVA the same way; without it an
 * OVA's tar bytes would pass format detection as a raw disk.
 *
 * The input is opened here and its first block looked at (ova-detect.ts: one tar header, no XML parser). A disk
 * image's input is handed on open: a pipe can be read only once, and its head stays buffered for the driver. An
 * OVA in a local file is handed on by path, so that its members are read where they lie; any other OVA
 * (standard input, a URL) is handed on open, to be read once, in order.
 */
import { UsageError } from "../errors.js";
import type { ImageInput } from "../inputs/image-input.js";
import { openInput, type InputOptions } from "../inputs/open-input.js";
import { startsLikeOva } from "../ova/ova-detect.js";
import type { ImageLocation } from "./open-image.js";

export type RecognisedInput =
  /** An OVA: a local file's path, or an input to read in order. */
  | { readonly kind: "appliance"; readonly ova: string | ImageInput }
  /** A disk image, for openImage: the location as given (format named), or its input opened. */
  | { readonly kind: "disk"; readonly input: ImageLocation };

export interface RecogniseOptions extends InputOptions {
  /** The caller named the input's format: it is read as that format, never as an OVA. */
  readonly format?: string;
  /** Open options for a disk image's driver: refused for an OVA, whose disks declare their own. */
  readonly driverOptions?: Readonly<Record<string, string>>;
}

/** Tells an OVA from a disk image. The result owns the input (one given open included; closed on failure). */
export async function recogniseInput(
  location: ImageLocation,
  options: RecogniseOptions = {},
): Promise<RecognisedInput> {
  if (options.format !== undefined) return { kind: "disk", input: location };
  const input = typeof location === "string" ? await openInput(location, options) : location;
  let ova: boolean;
  try {
    ova = await startsLikeOva(input);
  } catch (e) {
    await input.close().catch(() => undefined);
    throw e;
  }
  if (!ova) return { kind: "disk", input };
  if (Object.keys(options.driverOptions ?? {}).length > 0) {
    await input.close();
    throw new UsageError(`${input.path} is an OVA: open options apply to disk images (an OVA's disks declare theirs)`);
  }
  if (input.localPath !== undefined && !input.sequential) {
    await input.close();
    return { kind: "appliance", ova: input.localPath };
  }
  return { kind: "appliance", ova: input };
}
