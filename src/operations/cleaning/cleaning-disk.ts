import { open } from "node:fs/promises";

/** One filesystem of the guest, on the block device the run attached for it. */
export interface GuestFilesystem {
  /** Host block device (a loop device or an LVM volume over one). */
  readonly device: string;
  readonly type: string;
  readonly uuid?: string;
  /** Where the guest mounts it, when this run mounted it. */
  readonly guestPath?: string;
}

/**
 * A stretch of the disk that may name a filesystem by UUID but that cleaning cannot edit as files: a
 * filesystem we do not mount (the vfat EFI system partition with GRUB's grub.cfg or its embedded config).
 */
export interface UneditableArea {
  readonly description: string;
  /** A file or block device to read. */
  readonly path: string;
  readonly offset: number;
  readonly length: number;
}

/** A change to a block device, made only once every guest filesystem is unmounted (virt-sysprep's device phase). */
export interface DeviceChange {
  readonly device: string;
  /** What the report shows as the change's path: the guest mount point, else the device. */
  readonly path: string;
  readonly detail: string;
  /** What a failure leaves behind, for the error (the files already changed to match). */
  readonly ifFailed?: string;
  apply(): Promise<void>;
}

/** The BIOS boot code (the gap after the MBR, BIOS boot partitions), as far as it can be read. */
export interface BootCode {
  /** Its bytes, and the inflated kernel and configuration of a GRUB core image found in it. */
  readonly text: Buffer;
  /** GRUB boots the disk (boot.img in the MBR) but its core image could not be read (another GRUB version). */
  readonly unreadableGrub: boolean;
}

/** The guest's disk as cleaning sees it; absent when a run cleans a plain folder. */
export interface CleaningDisk {
  readonly filesystems: readonly GuestFilesystem[];
  readonly uneditable: readonly UneditableArea[];
  /** Read on first use (only fs-uuids needs it). */
  bootCode(): Promise<BootCode>;
}

/** Larger areas are not searched (an answer we cannot give counts as "named there"). */
export const MAX_SEARCHED_AREA = 2 ** 31;
const CHUNK = 4 * 2 ** 20;

/**
 * Whether any of `needles` (ASCII, matched case-insensitively) occurs in the area. Reads in bounded chunks
 * with an overlap of the longest needle, so a match across a chunk boundary is found.
 */
export async function areaMentions(area: UneditableArea, needles: readonly string[]): Promise<boolean> {
  if (area.length > MAX_SEARCHED_AREA) return true;
  const wanted = needles.map((n) => Buffer.from(n.toLowerCase(), "latin1"));
  const overlap = Math.max(...wanted.map((w) => w.length)) - 1;
  const fh = await open(area.path, "r");
  try {
    const buffer = Buffer.alloc(CHUNK + overlap);
    let carried = 0;
    for (let at = 0; at < area.length;) {
      const want = Math.min(CHUNK, area.length - at);
      const { bytesRead } = await fh.read(buffer, carried, want, area.offset + at);
      if (bytesRead === 0) break;
      const filled = carried + bytesRead;
      const window = Buffer.from(buffer.subarray(0, filled).toString("latin1").toLowerCase(), "latin1");
      if (wanted.some((w) => window.includes(w))) return true;
      carried = Math.min(overlap, filled);
      buffer.copy(buffer, 0, filled - carried, filled);
      at += bytesRead;
    }
    return false;
  } finally {
    await fh.close();
  }
}
