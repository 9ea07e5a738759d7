import type { ImageSource } from "../../formats/types.js";

/** What the first bytes of a partition (or a bare disk) say it holds. */
export type FilesystemMagic = "ext" | "xfs" | "btrfs" | "lvm" | "swap" | null;

/**
 * Recognises a filesystem by its superblock's magic, read through the engine: enough to plan a disk without
 * attaching anything (blkid -p on a device says more, once there is one). ext2/3/4: 0xEF53 at byte 1080; XFS:
 * "XFSB" at 0; btrfs: "_BHRfS_M" at 65,600; an LVM physical volume: "LABELONE" in sector 1; swap:
 * "SWAPSPACE2" at the end of the first 4 KiB page.
 */
export async function filesystemMagic(source: ImageSource, offset: number, size: number): Promise<FilesystemMagic> {
  const head = await source.read(offset, Math.min(size, 128 * 1024));
  const at = (pos: number, text: string) =>
    head.length >= pos + text.length && head.toString("latin1", pos, pos + text.length) === text;
  if (head.length >= 1082 && head.readUInt16LE(1080) === 0xef53) return "ext";
  if (at(0, "XFSB")) return "xfs";
  if (at(65536 + 64, "_BHRfS_M")) return "btrfs";
  if (at(512, "LABELONE")) return "lvm";
  if (at(4096 - 10, "SWAPSPACE2")) return "swap";
  return null;
}
