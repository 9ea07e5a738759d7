/**
 * VHD's size ambiguity: the footer stores the disk size twice, as `current size` in bytes and as a CHS geometry,
 * and writers disagree on which one is the disk. Virtual PC sizes the guest's disk from the geometry (which the
 * specification's algorithm rounds down, so current size is usually a little larger); Hyper-V, Windows, Disk2vhd,
 * VirtualBox, Xen and qemu with force_size use current size, and their geometry is then often smaller than the
 * disk, or garbage (bximage truncates the cylinder count to 16 bits above ~32 GiB).
 *
 * Reading a disk too short loses its last sectors (on GPT disks, the backup partition table), while reading it too
 * long only adds a tail of zeros, so the rule below uses the geometry only for the creators known to size disks by
 * it, and current size for everyone else, including creators it does not know:
 *
 * | creator app | written by                               | auto rule              |
 * | ----------- | ---------------------------------------- | ---------------------- |
 * | "vpc "      | Microsoft Virtual PC                     | chs                    |
 * | "vs  "      | Microsoft Virtual Server                 | chs                    |
 * | "qemu"      | qemu-img, force_size=off (size = CHS)    | chs                    |
 * | "win "      | Hyper-V, Windows disk management         | footer (current size)  |
 * | "d2v "/"d2v\0" | Sysinternals Disk2vhd                 | footer                 |
 * | "qem2"      | qemu-img, force_size=on                  | footer                 |
 * | "tap\0"     | Xen blktap / vhd-util                    | footer                 |
 * | "CTXS"      | Citrix XenConverter                      | footer                 |
 * | "vbox"      | VirtualBox                               | footer                 |
 * | "bxic"      | Bochs bximage (CHS wraps above ~32 GiB)  | footer                 |
 * | anything    | unknown creators                         | footer                 |
 *
 * Two safety rules apply on top, in `auto` only: a geometry at its maximum (65535/16/255, what qemu writes for
 * disks too large for CHS) means "use current size", and the geometry is never allowed to make the disk larger
 * than current size. qemu agrees with this table except for unknown creators, VirtualBox and bximage, where it
 * uses the geometry. The open option `size=footer|chs` overrides the table.
 */
import { UsageError } from "../../errors.js";
import type { VhdFooter } from "./vhd-footer.js";
import { chsSectors, isMaxGeometry } from "./vhd-geometry.js";

export type VhdSizeRule = "footer" | "chs";
export type VhdSizeChoice = "auto" | VhdSizeRule;

/** Creators known to size the disk by its geometry; everything else is sized by current size. */
const CHS_CREATORS: Readonly<Record<string, string>> = {
  "vpc ": "Virtual PC",
  "vs  ": "Virtual Server",
  qemu: "qemu (force_size=off)",
};

/** Creators known to size the disk by current size, named in details() for clarity. */
const FOOTER_CREATORS: Readonly<Record<string, string>> = {
  "win ": "Hyper-V / Windows",
  "d2v ": "Disk2vhd",
  "d2v\0": "Disk2vhd",
  qem2: "qemu (force_size=on)",
  "tap\0": "Xen blktap",
  CTXS: "Citrix XenConverter",
  vbox: "VirtualBox",
  bxic: "Bochs bximage",
};

export interface VhdSizeDecision {
  readonly size: number;
  readonly rule: VhdSizeRule;
  /** Why this rule was used, for details(). */
  readonly reason: string;
  readonly chsSize: number;
  readonly footerSize: number;
}

export function parseSizeChoice(value: string | undefined): VhdSizeChoice {
  if (value === undefined || value === "auto" || value === "footer" || value === "chs") return value ?? "auto";
  throw new UsageError(`vhd: size=${value} is not one of auto, footer, chs`);
}

/** The name of the program a creator tag stands for, when known. */
export function creatorName(creatorApp: string): string | undefined {
  return CHS_CREATORS[creatorApp] ?? FOOTER_CREATORS[creatorApp];
}

/** Decides the virtual disk size of a VHD from its footer. Sizes are whole sectors, as VHD disks are. */
export function decideVhdSize(footer: VhdFooter, choice: VhdSizeChoice): VhdSizeDecision {
  const footerSize = Math.floor(footer.currentSize / 512) * 512;
  const chsSize = chsSectors(footer.geometry) * 512;
  const make = (rule: VhdSizeRule, reason: string): VhdSizeDecision => ({
    size: rule === "footer" ? footerSize : chsSize,
    rule,
    reason,
    chsSize,
    footerSize,
  });
  if (choice !== "auto") return make(choice, `size=${choice} requested`);
  const creator = footer.creatorApp;
  if (isMaxGeometry(footer.geometry)) return make("footer", "geometry is the maximum 65535/16/255");
  if (Object.hasOwn(CHS_CREATORS, creator)) {
    if (chsSize > footerSize) return make("footer", `geometry exceeds current size (creator ${CHS_CREATORS[creator]})`);
    return make("chs", `creator ${CHS_CREATORS[creator]} sizes disks by geometry`);
  }
  const known = FOOTER_CREATORS[creator];
  return make("footer", known ? `creator ${known} sizes disks by current size` : "unknown creator: current size");
}
