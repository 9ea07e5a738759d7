/**
 * The raw driver's open options, after qemu's raw format driver: `offset` (where the disk starts in the input)
 * and `size` (how many bytes from there are the disk). A pipe says nothing of its length, so a raw image read
 * from one needs `size`; elsewhere both default to the whole input.
 */
import type { CreateOptionDoc } from "../../types.js";
import type { ImageInput } from "../../inputs/image-input.js";
import { StreamInput } from "../../inputs/stream-input.js";
import { UsageError } from "../../errors.js";
import { sizeInBytes } from "../../engine/create-options.js";
import { LIMITS } from "../../limits.js";

export const rawOpenOptions: readonly CreateOptionDoc[] = [
  {
    name: "size",
    description:
      "bytes of the input that are the disk, from `offset` on; needed to read raw from standard input (a pipe " +
      "has no size to read)",
    values: "bytes, or with a k, M, G or T suffix",
    default: "the rest of the input",
  },
  {
    name: "offset",
    description: "where the disk starts in the input",
    values: "bytes, or with a k, M, G or T suffix",
    default: "0",
  },
];

/** The stretch of the input that is the disk. */
export interface RawWindow {
  readonly offset: number;
  readonly size: number;
}

export function rawWindow(input: ImageInput, options: Readonly<Record<string, string>>): RawWindow {
  const offset = options.offset === undefined ? 0 : sizeOption(options.offset, "raw offset");
  const given = options.size === undefined ? undefined : sizeOption(options.size, "raw size");
  if (given !== undefined && given > LIMITS.maxVirtualSize) {
    throw new UsageError(`raw size: ${given} bytes is beyond the ${LIMITS.maxVirtualSize}-byte limit`);
  }
  // A pipe's length is known only once it has ended, which may or may not be before this point; a member of an
  // archive read in order is sequential too, but its size is known from the start.
  if (input instanceof StreamInput) {
    if (given === undefined) {
      throw new UsageError(
        `${input.path}: a raw image read from a pipe has no size to read: give the disk's size in bytes with ` +
          "--input-option size=N (a k, M, G or T suffix may follow N)",
      );
    }
    return { offset, size: given };
  }
  if (offset > input.size) {
    throw new UsageError(`${input.path}: raw offset ${offset} lies beyond the end of the input (${input.size} bytes)`);
  }
  const size = given ?? input.size - offset;
  if (offset + size > input.size) {
    throw new UsageError(
      `${input.path}: raw offset ${offset} plus size ${size} is more than the input's ${input.size} bytes`,
    );
  }
  return { offset, size };
}

function sizeOption(text: string, what: string): number {
  const bytes = sizeInBytes(text);
  if (bytes === undefined) throw new UsageError(`${what}: "${text}" is not a size (examples: 65536, 64k, 2M)`);
  return bytes;
}
