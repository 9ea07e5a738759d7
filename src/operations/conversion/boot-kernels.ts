/**
 * The kernels a converted guest could boot on a PC: the guest's own in /boot that are x86 bzImages and not
 * Xen-only builds (CentOS 5's `el5xen` kernel starts only under Xen), or an external kernel the caller gives.
 */
import { UsageError } from "../../formats/errors.js";
import { findKernels } from "../../guest/inspect/boot-files.js";
import { openGuestFile, openHostFile, readHead, type BoundedFile } from "./bounded-file.js";
import { kernelRelease, parseBzImageHeader, SETUP_HEAD_BYTES, type BzImageHeader } from "./bzimage.js";

/** Kernel images are a few MiB to a few tens; anything past this is not one. */
export const MAX_KERNEL_BYTES = 256 * 2 ** 20;
/** Initramfs images: Debian's are 30-70 MiB, dracut's with firmware more. */
export const MAX_RAMDISK_BYTES = 2 ** 30;

export interface GuestKernel {
  readonly version: string;
  /** Guest paths. */
  readonly kernel: string;
  readonly initramfs: string | null;
  /** Why a PC cannot boot it; absent when it can. */
  readonly unusable?: string;
}

async function headerOf(file: BoundedFile): Promise<BzImageHeader | null> {
  return parseBzImageHeader(await readHead(file, SETUP_HEAD_BYTES));
}

/** Natural order of kernel releases: "2.6.32-754.el6" < "3.10.0-1160.el7" < "6.1.0-9" < "6.1.0-18". */
export function compareReleases(a: string, b: string): number {
  return a.localeCompare(b, "en", { numeric: true });
}

/** The guest's kernels in /boot, oldest release first, each said usable on a PC or not (and why). */
export async function guestKernels(root: string): Promise<GuestKernel[]> {
  const out: GuestKernel[] = [];
  for (const k of await findKernels(root)) {
    let unusable: string | undefined;
    if (/xen/i.test(k.version)) unusable = "a Xen-only kernel";
    else {
      try {
        const file = await openGuestFile(root, k.kernel, MAX_KERNEL_BYTES);
        try {
          if (!(await headerOf(file))) unusable = "not an x86 bzImage";
        } finally {
          await file.handle.close();
        }
      } catch (e) {
        unusable = `cannot be read (${(e as Error).message})`;
      }
    }
    out.push({ ...k, ...(unusable && { unusable }) });
  }
  return out.sort((a, b) => compareReleases(a.version, b.version));
}

export interface ExternalKernel {
  /** The release from the kernel's own header ("6.1.0-18-amd64"), which names it in /boot. */
  readonly version: string;
  /** The whole version string. */
  readonly versionString: string;
  readonly size: number;
}

/**
 * Reads the release of a kernel the caller gives from its bzImage header; a UsageError naming the file when it
 * is not a regular file, not an x86 kernel, or carries no usable version string.
 */
export async function readExternalKernel(path: string): Promise<ExternalKernel> {
  const file = await openHostFile(path, "kernel", MAX_KERNEL_BYTES);
  try {
    const header = await headerOf(file);
    if (!header) throw new UsageError(`kernel ${path}: is not an x86 Linux kernel (no bzImage setup header)`);
    if (!header.versionString) throw new UsageError(`kernel ${path}: its header carries no version string`);
    const version = kernelRelease(header.versionString);
    if (!version)
      throw new UsageError(
        `kernel ${path}: its version string "${header.versionString}" does not start with a release`,
      );
    return { version, versionString: header.versionString, size: file.size };
  } finally {
    await file.handle.close();
  }
}
