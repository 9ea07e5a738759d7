import { listGuestDir } from "../guest-files.js";

export interface InstalledKernel {
  readonly version: string;
  readonly kernel: string;
  /** The initramfs for this kernel in /boot, if any (initrd.img-V, initramfs-V.img, initrd-V.img, initrd-V). */
  readonly initramfs: string | null;
}

/** Kernels in /boot (vmlinuz-V) paired with their initramfs, newest name last. */
export async function findKernels(root: string): Promise<InstalledKernel[]> {
  const names = await listGuestDir(root, "/boot");
  const out: InstalledKernel[] = [];
  for (const name of names) {
    const m = /^vmlinuz-(.+)$/.exec(name);
    if (!m) continue;
    const version = m[1]!;
    const initramfs =
      [`initrd.img-${version}`, `initramfs-${version}.img`, `initrd-${version}.img`, `initrd-${version}`].find((n) =>
        names.includes(n),
      ) ?? null;
    out.push({ version, kernel: `/boot/${name}`, initramfs: initramfs && `/boot/${initramfs}` });
  }
  return out;
}
