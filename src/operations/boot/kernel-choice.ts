import { lstat } from "node:fs/promises";
import { findKernels, type InstalledKernel } from "../../guest/inspect/boot-files.js";
import { resolveGuestPath } from "../../guest/guest-path.js";

/**
 * Compares kernel versions as dpkg and rpm order them in the large: runs of digits by value, other runs by
 * character, so 6.1.0-18-amd64 is newer than 6.1.0-9-amd64 and 5.10 newer than 5.9.
 */
export function compareKernelVersions(a: string, b: string): number {
  const parts = (v: string) => v.match(/\d+|[^\d]+/g) ?? [];
  const pa = parts(a);
  const pb = parts(b);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const nx = /^\d/.test(x);
    const ny = /^\d/.test(y);
    if (nx && ny) {
      const d = Number(x) - Number(y);
      if (d !== 0) return d;
    } else if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

async function isRegularFile(root: string, guestPath: string): Promise<boolean> {
  const st = await lstat(await resolveGuestPath(root, guestPath, { followLast: false })).catch(() => null);
  return st?.isFile() ?? false;
}

/**
 * The kernel to boot: the newest in /boot that has an initramfs (the guest's own drivers for its root disk live
 * there), else the newest without one. Kernels and initramfs images that are links are passed over: the boot
 * loader reads the filesystem itself, and a link's target may be outside the filesystem it reads.
 */
export async function chooseKernel(root: string): Promise<InstalledKernel | null> {
  const usable: InstalledKernel[] = [];
  for (const k of await findKernels(root)) {
    if (!(await isRegularFile(root, k.kernel))) continue;
    const initramfs = k.initramfs && (await isRegularFile(root, k.initramfs)) ? k.initramfs : null;
    usable.push({ ...k, initramfs });
  }
  const newest = (list: InstalledKernel[]) =>
    list.sort((a, b) => compareKernelVersions(a.version, b.version)).at(-1) ?? null;
  return newest(usable.filter((k) => k.initramfs)) ?? newest(usable);
}
