/**
 * Creating VHDs: the `-o` options, the disk size and geometry they lead to, and the footer every VHD ends with.
 * The bytes are laid out by VhdFixedTarget or VhdDynamicTarget.
 *
 * force_size decides the size question (see vhd-size-rule.ts). Azure and Hyper-V read current size, and Azure
 * refuses a VHD whose size is not a whole number of MiB, so rounding the disk up to a CHS geometry (what Virtual PC
 * needs, and qemu-img's default) would break the most common reason to write a VHD today. The default is therefore
 * force_size=on: current size is exactly the source's size (in whole sectors), the creator tag is "qem2", which
 * qemu reads as "trust current size", and the geometry is the specification's for that size, as Hyper-V writes it.
 * force_size=off rounds the disk up to the next geometry and writes creator "qemu", exactly like qemu-img's
 * default, so Virtual PC and every reader agree on the size; it makes the disk slightly larger than the source.
 */
import { lazyCrypto } from "../../../util/lazy-builtins.js";
import type { CreateOptions, ImageTarget } from "../../types.js";
import type { OutputFile } from "../../io/output-file.js";
import { UsageError } from "../../errors.js";
import { validateCreateOptions } from "../../engine/create-option-validation.js";
import {
  VHD_FEATURES_RESERVED,
  VHD_FORMAT_VERSION,
  VHD_NO_DATA_OFFSET,
  VhdDiskType,
  vhdTimestamp,
  type VhdFooter,
} from "./vhd-footer.js";
import { MAX_CHS_SECTORS, chsSectors, geometryCovering, geometryForSectors, type ChsGeometry } from "./vhd-geometry.js";
import { VHD_DEFAULT_BLOCK_SIZE } from "./vhd-dynamic-header.js";
import { VhdFixedTarget } from "./vhd-fixed-target.js";
import { VhdDynamicTarget } from "./vhd-dynamic-target.js";
import { LIMITS } from "../../limits.js";

/** qemu's ceiling for VHD (0xff000000 sectors = 2040 GiB), which is also Hyper-V's. */
export const VHD_MAX_DISK_SIZE = 0xff00_0000 * 512;

/** The creator version written into footers: chromogenic's VHD writer, version 1.0. */
const CREATOR_VERSION = 0x0001_0000;

/** The schema, loaded when there are options to check (zod stays out of a plain conversion's start-up). */
export const loadVhdCreateOptions = async () => (await import("./vhd-create-options.js")).vhdCreateOptions;

export interface VhdLayout {
  readonly subformat: "dynamic" | "fixed";
  /** Bytes of the disk as the VHD declares it: the source's size rounded up to sectors (or to a geometry). */
  readonly diskSize: number;
  readonly blockSize: number;
  readonly footer: Omit<VhdFooter, "checksum">;
}

/** Validates the options and decides the disk's layout, before any byte is written. */
export async function planVhd(virtualSize: number, options: CreateOptions): Promise<VhdLayout> {
  const given = await validateCreateOptions("vhd", loadVhdCreateOptions, options);
  const subformat = given.subformat ?? "dynamic";
  const forceSize = given.force_size ?? true;
  const blockSize = given.block_size ?? VHD_DEFAULT_BLOCK_SIZE;

  const sectors = Math.ceil(virtualSize / 512);
  let geometry: ChsGeometry;
  let diskSectors: number;
  if (forceSize) {
    geometry = geometryForSectors(sectors);
    diskSectors = sectors;
  } else {
    geometry = geometryCovering(sectors);
    // Beyond what a geometry can describe, the size is exact and the geometry is the maximum (as qemu does).
    diskSectors = sectors > MAX_CHS_SECTORS ? sectors : chsSectors(geometry);
  }
  const diskSize = diskSectors * 512;
  if (diskSize > VHD_MAX_DISK_SIZE) {
    throw new UsageError(`vhd: a ${virtualSize}-byte disk is larger than VHD's maximum of 2040 GiB (use vhdx)`);
  }
  if (subformat === "dynamic" && Math.ceil(diskSize / blockSize) * 4 > LIMITS.maxTableBytes) {
    throw new UsageError(`vhd: block_size=${blockSize} needs too large a block allocation table for this disk`);
  }
  return {
    subformat,
    diskSize,
    blockSize,
    footer: {
      features: VHD_FEATURES_RESERVED,
      formatVersion: VHD_FORMAT_VERSION,
      // Dynamic disks: the dynamic header follows the footer copy at offset 0.
      dataOffset: subformat === "dynamic" ? 512n : VHD_NO_DATA_OFFSET,
      timestamp: vhdTimestamp(Date.now()),
      creatorApp: forceSize ? "qem2" : "qemu",
      creatorVersion: CREATOR_VERSION,
      creatorHostOs: "Wi2k",
      originalSize: diskSize,
      currentSize: diskSize,
      geometry,
      diskType: subformat === "dynamic" ? VhdDiskType.dynamic : VhdDiskType.fixed,
      uniqueId: uuidV4(),
      savedState: false,
    },
  };
}

function uuidV4(): Buffer {
  const id = lazyCrypto().randomBytes(16);
  id[6] = (id[6]! & 0x0f) | 0x40;
  id[8] = (id[8]! & 0x3f) | 0x80;
  return id;
}

export async function createVhdTarget(
  output: OutputFile,
  virtualSize: number,
  options: CreateOptions,
): Promise<ImageTarget> {
  const layout = await planVhd(virtualSize, options);
  if (layout.subformat === "fixed") return new VhdFixedTarget(output, layout.diskSize, layout.footer);
  if (!output.seekable) {
    throw new UsageError(
      "vhd: a dynamic VHD cannot be written to a stream (its block table is only known at the end); " +
        "write it to a file, or use -o subformat=fixed",
    );
  }
  return new VhdDynamicTarget(output, layout.diskSize, layout.blockSize, layout.footer);
}
