/**
 * Helpers shared by the VMDK suites: the other VMDK tools (Bochs' bximage, VMDKstream, libvmdk's vmdkinfo).
 * The checks every format shares (whole-image reads, qemu's reading, the allocation map) are in image-checks.
 */
import { run, runOk } from "./tools.js";

export const MiB = 2 ** 20;

/** Bochs' converter writing a header-version-1 monolithicSparse VMDK ("vmware4") from a raw disk. */
export async function bximageConvert(raw: string, vmdk: string): Promise<void> {
  // bximage prints a progress bar of several hundred KiB; only its exit status matters.
  await runOk("bximage", ["-func=convert", "-imgmode=vmware4", "-q", raw, vmdk]);
}

/** Red Hat's VMDKstream (Debian python3-vmdkstream): raw → streamOptimized, its own way. */
export async function vmdkStreamConvert(raw: string, vmdk: string): Promise<void> {
  await runOk("/usr/bin/python3", ["/usr/lib/python3/dist-packages/VMDKstream.py", raw, vmdk]);
}

export interface VmdkInfo {
  readonly diskType: string;
  readonly mediaSize: number;
  readonly cid: number;
  readonly parentCid: number;
  readonly extents: number;
}

/** libvmdk's view of an image (`vmdkinfo`), or undefined when it cannot read the file. */
export async function vmdkinfo(path: string): Promise<VmdkInfo | undefined> {
  const r = await run("vmdkinfo", [path]);
  if (r.code !== 0) return undefined;
  const field = (name: string) => new RegExp(`${name}:\\s*(.+)`).exec(r.stdout)?.[1]?.trim() ?? "";
  return {
    diskType: field("Disk type"),
    mediaSize: Number(/\((\d+) bytes\)/.exec(field("Media size"))?.[1]),
    cid: Number(field("Content identifier")),
    parentCid: Number(field("Parent content identifier")),
    extents: Number(field("Number of extents")),
  };
}
