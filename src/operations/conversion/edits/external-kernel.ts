import { guestKernels, MAX_KERNEL_BYTES, MAX_RAMDISK_BYTES, readExternalKernel } from "../boot-kernels.js";
import { openHostFile, type BoundedFile } from "../bounded-file.js";
import type { ConversionContext } from "../conversion-context.js";
import { defineEdit } from "../conversion-edit.js";

/** The name the guest's own tools give an initramfs: what /boot already holds, else its family's habit. */
async function initramfsName(ctx: ConversionContext, version: string): Promise<string> {
  const names = await ctx.tree.list("/boot");
  if (names.some((n) => n.startsWith("initrd.img-"))) return `initrd.img-${version}`;
  if (names.some((n) => /^initramfs-.+\.img$/.test(n))) return `initramfs-${version}.img`;
  if (names.some((n) => /^initrd-.+\.img$/.test(n))) return `initrd-${version}.img`;
  const { family, version: release, id } = ctx.distribution;
  // mkinitrd (RHEL 5 and before) wrote initrd-V.img; dracut (RHEL 6, Fedora) initramfs-V.img.
  if (family === "redhat")
    return id === "fedora" || parseInt(release) >= 6 ? `initramfs-${version}.img` : `initrd-${version}.img`;
  if (family === "suse") return `initrd-${version}`;
  return `initrd.img-${version}`;
}

async function withHostFile<T>(
  path: string,
  what: string,
  max: number,
  use: (f: BoundedFile) => Promise<T>,
): Promise<T> {
  const file = await openHostFile(path, what, max);
  try {
    return await use(file);
  } finally {
    await file.handle.close();
  }
}

export default defineEdit({
  name: "external-kernel",
  description:
    "When the guest has no kernel a PC can boot (none in /boot, or only Xen-only ones), install the given external kernel and ramdisk into /boot, named after the kernel's own version string",
  defaultEnabled: true,
  async perform(ctx) {
    const kernels = await guestKernels(ctx.root);
    const usable = kernels.filter((k) => !k.unusable);
    const { kernel, ramdisk } = ctx.inputs;
    if (usable.length) {
      const own = usable.at(-1)!;
      ctx.state.boot = { version: own.version, kernel: own.kernel, initramfs: own.initramfs, origin: "guest" };
      // A second run on a converted guest finds the kernel it installed: no news.
      if (kernel && (await readExternalKernel(kernel)).version !== own.version)
        ctx.warn(`the guest has its own kernel for a PC (${own.version}); ${kernel} was not installed`);
      return `the guest has its own kernel for a PC (${own.version})`;
    }
    const found = kernels.map((k) => `${k.kernel}: ${k.unusable}`).join("; ") || "none in /boot";
    if (!kernel) {
      ctx.block(`the guest has no kernel a PC can boot (${found}) and no external kernel was given`);
      return "no kernel to install";
    }
    const external = await readExternalKernel(kernel);
    const kernelPath = `/boot/vmlinuz-${external.version}`;
    await withHostFile(kernel, "kernel", MAX_KERNEL_BYTES, (file) =>
      ctx.install(file, kernelPath, 0o644, `copied from ${kernel} (${file.size} bytes): ${external.versionString}`),
    );
    let initramfsPath: string | null = null;
    if (ramdisk) {
      initramfsPath = `/boot/${await initramfsName(ctx, external.version)}`;
      const path = initramfsPath;
      await withHostFile(ramdisk, "ramdisk", MAX_RAMDISK_BYTES, (file) =>
        ctx.install(file, path, 0o644, `copied from ${ramdisk} (${file.size} bytes)`),
      );
    } else ctx.warn(`no ramdisk was given with ${kernel}: the kernel must find its root disk on its own`);
    if ((await ctx.tree.kind(`/lib/modules/${external.version}`)) === null)
      ctx.warn(`the guest has no /lib/modules/${external.version}: it gets only the drivers in the kernel and ramdisk`);
    ctx.state.boot = { version: external.version, kernel: kernelPath, initramfs: initramfsPath, origin: "external" };
    ctx.state.external = { kernel, ramdisk: ramdisk ?? null };
  },
});
