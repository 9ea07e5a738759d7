import { MOUNTABLE_TYPES } from "../../guest/mount/filesystem-probe.js";
import type { GuestSession } from "../../guest/guest-session.js";
import type { BootCode, CleaningDisk, GuestFilesystem, UneditableArea } from "./cleaning-disk.js";
import { bootCodeText, mbrHasGrub } from "./grub-core-text.js";

/** Devices holding something other than a filesystem: never searched, never given a new UUID. */
const NOT_FILESYSTEMS = new Set(["LVM2_member", "crypto_LUKS", "swap"]);

/**
 * The guest's disk for the operations that work on devices: its filesystems (with where the guest mounts
 * them), the unmounted filesystems that may name one (an ESP), and the BIOS boot code, read when asked.
 */
export async function describeDisk(session: GuestSession): Promise<CleaningDisk> {
  const { mounted } = session;
  const filesystems: GuestFilesystem[] = [];
  const uneditable: UneditableArea[] = [];
  for (const d of mounted.devices) {
    if (!d.filesystem) continue;
    const guestPath = mounted.mounts.find((m) => m.device === d.device)?.guestPath;
    filesystems.push({ device: d.device, type: d.filesystem.type, uuid: d.filesystem.uuid, guestPath });
    if (!MOUNTABLE_TYPES.has(d.filesystem.type) && !NOT_FILESYSTEMS.has(d.filesystem.type)) {
      const size = d.partition?.size ?? 0;
      uneditable.push({
        description: `the ${d.filesystem.type} filesystem on partition ${d.partition?.number ?? "?"} (not mounted by cleaning)`,
        path: d.device,
        offset: 0,
        length: size,
      });
    }
  }
  let bootCode: Promise<BootCode> | undefined;
  return { filesystems, uneditable, bootCode: () => (bootCode ??= readBootCode(session)) };
}

/** The gap before the first partition and every BIOS boot partition, with any GRUB core in them inflated. */
async function readBootCode({ attached }: GuestSession): Promise<BootCode> {
  const table = attached.table;
  if (!table) return { text: Buffer.alloc(0), unreadableGrub: false };
  const areas: { offset: number; length: number }[] = [];
  const first = Math.min(...table.partitions.map((p) => p.offset));
  if (Number.isFinite(first) && first > 0) areas.push({ offset: 0, length: first });
  for (const p of table.partitions) if (p.role === "bios-boot") areas.push({ offset: p.offset, length: p.size });
  const texts: Buffer[] = [];
  let grubCore = false;
  for (const area of areas) {
    const read = await bootCodeText(attached.rawPath, area.offset, area.length);
    texts.push(read.text);
    grubCore ||= read.grubCore;
  }
  return { text: Buffer.concat(texts), unreadableGrub: !grubCore && (await mbrHasGrub(attached.rawPath)) };
}
