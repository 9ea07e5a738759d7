/**
 * Helpers shared by the VMDK suites: reading a whole image through our reader, qemu's reading of the same
 * image, the allocation map, and the other VMDK tools (Bochs' bximage, VMDKstream, libvmdk's vmdkinfo).
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Extent, ImageSource } from "../../src/formats/types.js";
import { qemuImg, run, runOk } from "./tools.js";

export const MiB = 2 ** 20;

export async function extentsOf(source: ImageSource): Promise<Extent[]> {
  const out: Extent[] = [];
  for await (const e of source.extents()) out.push(e);
  return out;
}

/** The whole disk, read in uneven pieces several at a time so reads cross grain and extent boundaries. */
export async function readWhole(source: ImageSource): Promise<Buffer> {
  const out = Buffer.alloc(source.virtualSize);
  const piece = 777 * 1024 + 512 + 3;
  const reads: Promise<Buffer>[] = [];
  for (let pos = 0; pos < source.virtualSize; pos += piece) {
    const length = Math.min(piece, source.virtualSize - pos);
    reads.push(source.read(pos, length, out.subarray(pos, pos + length)));
  }
  await Promise.all(reads);
  return out;
}

/** `qemu-img convert -O raw` of `image`, read into memory. */
export async function qemuRaw(dir: string, image: string): Promise<Buffer> {
  const out = join(dir, `qemu-${Math.random().toString(36).slice(2)}.raw`);
  await qemuImg("convert", "-O", "raw", image, out);
  return readFile(out);
}

/** Checks the map covers the disk exactly, in order, with no empty extents. */
export function assertCovers(extents: readonly Extent[], size: number): void {
  let pos = 0;
  for (const e of extents) {
    assert.equal(e.offset, pos, "extents are contiguous");
    assert.ok(e.length > 0, "no empty extents");
    pos += e.length;
  }
  assert.equal(pos, size, "extents cover the disk");
}

/** Data in `disk` lies only inside the map's data extents (zero and unallocated ranges read as zeros). */
export function assertZerosOutsideData(disk: Buffer, extents: readonly Extent[]): void {
  for (const e of extents) {
    if (e.kind === "data") continue;
    const slice = disk.subarray(e.offset, e.offset + e.length);
    assert.ok(slice.equals(Buffer.alloc(slice.length)), `${e.kind} extent at ${e.offset} reads as zeros`);
  }
}

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
