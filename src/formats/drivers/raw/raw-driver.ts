import type { FormatDriver } from "../../types.js";
import { UsageError } from "../../errors.js";
import { RawSource } from "./raw-source.js";
import { RawTarget } from "./raw-target.js";

export const rawDriver: FormatDriver = {
  name: "raw",
  description: "raw disk image (sparse where the filesystem allows)",
  plainDisk: true,
  // Anything is a valid raw image, so raw only wins when no other driver recognises the file.
  probe: () => 1,
  open: async (input) => new RawSource(input),
  async create(output, virtualSize, options) {
    const unknown = Object.keys(options);
    if (unknown.length) throw new UsageError(`raw: unknown option(s) ${unknown.join(", ")} (raw takes none)`);
    return RawTarget.create(output, virtualSize);
  },
  createOptions: [],
};
