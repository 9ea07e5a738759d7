import { UsageError } from "../../formats/errors.js";
import type { ConversionEdit } from "./conversion-edit.js";
import atmosphereBootHooks from "./edits/atmosphere-boot-hooks.js";
import externalKernel from "./edits/external-kernel.js";
import fstabUuid from "./edits/fstab-uuid.js";
import initramfsModules from "./edits/initramfs-modules.js";
import initramfsVirtio from "./edits/initramfs-virtio.js";
import kernelCommandLine from "./edits/kernel-command-line.js";
import serialConsole from "./edits/serial-console.js";
import xenModuleAliases from "./edits/xen-module-aliases.js";

/**
 * Every Xen → KVM edit, in the order a conversion runs them: configuration first, then the kernel (installed
 * when the guest has none for a PC), then the check of the initramfs of the kernel it will boot, and last,
 * when that initramfs lacks virtio, the guest's initramfs configuration asking for it (the rebuild itself runs
 * after the conversion, inside the libguestfs appliance: rebuild-initramfs.ts).
 */
export const CONVERSION_EDITS: readonly ConversionEdit[] = [
  xenModuleAliases,
  atmosphereBootHooks,
  fstabUuid,
  serialConsole,
  kernelCommandLine,
  externalKernel,
  initramfsVirtio,
  initramfsModules,
];

/** The edits named, in run order; an unknown name is a UsageError listing the known ones. */
export function selectEdits(names?: readonly string[]): ConversionEdit[] {
  if (!names) return CONVERSION_EDITS.filter((e) => e.defaultEnabled);
  for (const name of names)
    if (!CONVERSION_EDITS.some((e) => e.name === name))
      throw new UsageError(
        `unknown Xen to KVM edit "${name}" (known: ${CONVERSION_EDITS.map((e) => e.name).join(", ")})`,
      );
  return CONVERSION_EDITS.filter((e) => names.includes(e.name));
}
