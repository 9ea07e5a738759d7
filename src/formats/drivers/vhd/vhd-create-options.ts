/**
 * The `-o key=value` options for writing VHD (loaded on demand; vhd-target.ts applies the defaults and explains
 * why force_size is on unless asked otherwise).
 */
import { choice, createOptionsSchema, onOff, option, powerOfTwoSize } from "../../engine/create-option-schema.js";

export const vhdCreateOptions = createOptionsSchema({
  subformat: option(choice(["dynamic", "fixed"]), {
    description:
      "dynamic: sparse, all-zero blocks left out (needs a seekable output); fixed: raw data then the footer " +
      "(what Azure requires; can be streamed)",
    default: "dynamic",
  }),
  force_size: option(onOff(), {
    description:
      "on: the disk is exactly the source's size (creator 'qem2'; what Hyper-V and Azure read; Azure also needs " +
      "the size to be a whole number of MiB); off: round the size up to a CHS geometry like Virtual PC and " +
      "qemu-img's default (creator 'qemu')",
    default: "on",
  }),
  block_size: option(powerOfTwoSize(4096, 256 * 2 ** 20), {
    description:
      "dynamic disks: bytes per block. 2M is what Virtual PC, Hyper-V and Azure use; qemu and libvhdi read any",
    default: "2M",
  }),
}).superRefine((options, ctx) => {
  if (options.block_size !== undefined && options.subformat === "fixed") {
    ctx.addIssue({ code: "custom", path: ["block_size"], message: "applies to subformat=dynamic only" });
  }
});
