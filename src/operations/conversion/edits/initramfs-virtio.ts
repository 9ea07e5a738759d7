import { guestKernels, MAX_RAMDISK_BYTES } from "../boot-kernels.js";
import { openGuestFile, openHostFile } from "../bounded-file.js";
import { defineEdit } from "../conversion-edit.js";
import { checkInitramfs } from "../initramfs/check-initramfs.js";

export default defineEdit({
  name: "initramfs-virtio",
  description:
    "Check (never change) that the initramfs of the kernel the guest boots holds virtio_blk and virtio_pci, or that the kernel has them built in; report it as to be rebuilt otherwise",
  defaultEnabled: true,
  async perform(ctx) {
    // The kernel chosen or installed by external-kernel; the guest's newest usable one when that did not run.
    if (!ctx.state.boot) {
      const own = (await guestKernels(ctx.root)).filter((k) => !k.unusable).at(-1);
      if (own) ctx.state.boot = { version: own.version, kernel: own.kernel, initramfs: own.initramfs, origin: "guest" };
    }
    const boot = ctx.state.boot;
    if (!boot) return "no kernel for a PC to check";
    const hostRamdisk = boot.origin === "external" ? ctx.state.external?.ramdisk : null;
    const check = await checkInitramfs({
      version: boot.version,
      guestPath: boot.initramfs,
      open: () =>
        hostRamdisk
          ? openHostFile(hostRamdisk, "ramdisk", MAX_RAMDISK_BYTES)
          : openGuestFile(ctx.root, boot.initramfs!, MAX_RAMDISK_BYTES),
      modulesBuiltin: await ctx.tree.readText(`/lib/modules/${boot.version}/modules.builtin`),
      config: await ctx.tree.readText(`/boot/config-${boot.version}`),
    });
    ctx.state.initramfs = check;
    if (check.verdict !== "ok") ctx.warn(check.reason);
  },
});
