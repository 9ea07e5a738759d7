import { MOUNTABLE_TYPES } from "../../guest/mount/filesystem-probe.js";
import type { GuestSession } from "../../guest/guest-session.js";
import type { CleaningDisk, GuestFilesystem, UneditableArea } from "./cleaning-disk.js";

/** Devices holding something other than a filesystem: never searched, never given a new UUID. */
const NOT_FILESYSTEMS = new Set(["LVM2_member", "crypto_LUKS", "swap"]);

/**
 * The guest's disk for the operations that work on devices: its filesystems (with where the guest mounts
 * them), and the areas that may name a filesystem but that cleaning cannot edit as files.
 */
export async function describeDisk(session: GuestSession): Promise<CleaningDisk> {
  const { attached, mounted } = session;
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
  const table = attached.table;
  if (table) {
    const first = Math.min(...table.partitions.map((p) => p.offset));
    if (Number.isFinite(first) && first > 0)
      uneditable.push({
        description: "the boot area before the first partition",
        path: attached.rawPath,
        offset: 0,
        length: first,
      });
    for (const p of table.partitions)
      if (p.role === "bios-boot")
        uneditable.push({
          description: `the BIOS boot partition ${p.number}`,
          path: attached.rawPath,
          offset: p.offset,
          length: p.size,
        });
  }
  return { filesystems, uneditable };
}
