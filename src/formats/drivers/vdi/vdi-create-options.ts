/** The `-o key=value` options for writing VDI (loaded on demand by vdi-target.ts). */
import { createOptionsSchema, onOff, option } from "../../engine/create-option-schema.js";

export const vdiCreateOptions = createOptionsSchema({
  static: option(onOff(), {
    description:
      "preallocate every block (VirtualBox's fixed-size image); the only variant that can be written to a pipe",
    default: "off",
  }),
});
