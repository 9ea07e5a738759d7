/**
 * The VDI format driver (VirtualBox's native disk image, header version 1.1): recognises the image by its
 * signature, reads static and dynamic images (differencing ones are refused) and writes both.
 */
import type { FormatDriver, ProbeInput } from "../../types.js";
import { hasVdiSignature } from "./vdi-header.js";
import { VdiSource } from "./vdi-source.js";
import { switchState } from "../../engine/create-options.js";
import { createVdiTarget, loadVdiCreateOptions } from "./vdi-target.js";

export const vdiDriver = {
  name: "vdi",
  description: "VirtualBox disk image, version 1.1, static and dynamic",
  // The 32-bit signature after the 64-byte text is what VirtualBox, qemu and file(1) all go by.
  probe: ({ head }: ProbeInput) => (hasVdiSignature(head) ? 100 : 0),
  open: (input) => VdiSource.open(input),
  create: createVdiTarget,
  createOptions: loadVdiCreateOptions,
  // A dynamic image's block map is only known at the end; a static one's is known from the start.
  writeAccess: (options) => (switchState(options.static) ? "sequential" : "random"),
  openOptions: [],
} as const satisfies FormatDriver;
