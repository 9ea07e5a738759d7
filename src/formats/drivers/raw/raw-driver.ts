import type { FormatDriver } from "../../types.js";
import { buildOn } from "../../inputs/image-input.js";
import { rawOpenOptions, rawWindow } from "./raw-open-options.js";
import { RawSource } from "./raw-source.js";
import { validateCreateOptions } from "../../engine/create-option-validation.js";
import { RawTarget } from "./raw-target.js";

/** Raw takes no create options; the empty schema refuses any. */
const loadRawCreateOptions = async () => (await import("../../engine/create-option-schema.js")).noCreateOptions;

export const rawDriver = {
  name: "raw",
  description: "raw disk image (sparse where the filesystem allows)",
  plainDisk: true,
  // Anything is a valid raw image, so raw only wins when no other driver recognises the file.
  probe: () => 1,
  open: (input, { driverOptions }) => buildOn(input, async () => new RawSource(input, rawWindow(input, driverOptions))),
  async create(output, virtualSize, options) {
    await validateCreateOptions("raw", loadRawCreateOptions, options);
    return RawTarget.create(output, virtualSize);
  },
  createOptions: loadRawCreateOptions,
  openOptions: rawOpenOptions,
  // The disk's bytes in order; on a seekable output, zero runs are left as holes.
  writeAccess: () => "sequential",
} as const satisfies FormatDriver;
