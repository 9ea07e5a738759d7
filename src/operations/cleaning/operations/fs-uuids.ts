import { randomUUID } from "node:crypto";
import { defineOperation } from "../cleaning-operation.js";
import type { CleaningContext } from "../cleaning-context.js";
import { areaMentions, type CleaningDisk, type GuestFilesystem } from "../cleaning-disk.js";
import { canSetUuid, missingUuidTool, setFilesystemUuid, uuidTool } from "../set-filesystem-uuid.js";

/** Not filesystems: nothing to change and nothing to warn about. */
const CONTAINERS = new Set(["LVM2_member", "crypto_LUKS", "swap"]);

/**
 * Files that name filesystems by UUID for mounting and booting: fstab and crypttab, GRUB's configuration and
 * environment block (Red Hat keeps kernelopts there), BLS entries, the kernel command line, and the resume
 * device of initramfs-tools.
 */
const REFERENCES = [
  "/etc/fstab",
  "/etc/crypttab",
  "/etc/default/grub",
  "/etc/default/grub.d/*.cfg",
  "/etc/kernel/cmdline",
  "/etc/initramfs-tools/conf.d/resume",
  "/boot/grub/grub.cfg",
  "/boot/grub/grubenv",
  "/boot/grub/menu.lst",
  "/boot/grub/grub.conf",
  "/boot/grub2/grub.cfg",
  "/boot/grub2/grubenv",
  "/boot/loader/entries/*.conf",
];

interface Renaming {
  readonly filesystem: GuestFilesystem & { readonly uuid: string };
  readonly next: string;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Why the filesystem's UUID must stay: where outside the guest's files it is (or may be) named, if anywhere. */
async function namedOutsideFiles(
  disk: CleaningDisk,
  fs: GuestFilesystem & { uuid: string },
): Promise<string | undefined> {
  const boot = await disk.bootCode();
  if (boot.text.toString("latin1").toLowerCase().includes(fs.uuid.toLowerCase()))
    return "the BIOS boot code (GRUB's core image) names it";
  // GRUB's prefix is on the filesystem mounted at /boot, else on the root's.
  const holdsGrub = fs.guestPath === (disk.filesystems.some((f) => f.guestPath === "/boot") ? "/boot" : "/");
  if (boot.unreadableGrub && holdsGrub)
    return "GRUB's core image may name it (a GRUB version whose core cannot be read here)";
  for (const area of disk.uneditable) if (await areaMentions(area, [fs.uuid])) return `${area.description} names it`;
  return undefined;
}

async function planRenamings(ctx: CleaningContext, disk: CleaningDisk): Promise<Renaming[]> {
  const plans: Renaming[] = [];
  for (const fs of disk.filesystems) {
    const label = `${fs.guestPath ?? fs.device} (${fs.type})`;
    if (!fs.uuid || CONTAINERS.has(fs.type)) continue;
    if (!canSetUuid(fs.type)) {
      ctx.warn(`${label}: cannot give this filesystem type a new UUID; kept`);
      continue;
    }
    const missing = await missingUuidTool(fs.type);
    if (missing) {
      ctx.warn(`${label}: UUID kept: changing it needs ${missing}, which is not installed on this host`);
      continue;
    }
    const where = await namedOutsideFiles(disk, { ...fs, uuid: fs.uuid });
    if (where) {
      ctx.warn(`${label}: UUID ${fs.uuid} kept so the guest still boots: ${where}, and cleaning cannot edit that`);
      continue;
    }
    plans.push({ filesystem: { ...fs, uuid: fs.uuid }, next: randomUUID() });
  }
  return plans;
}

export default defineOperation({
  name: "fs-uuids",
  description:
    "Give each filesystem (ext2/3/4, xfs, btrfs) a new random UUID and update fstab, crypttab, GRUB and BLS files that name the old one",
  defaultEnabled: false,
  families: "all",
  async perform(ctx) {
    const disk = ctx.disk;
    if (!disk) {
      ctx.warn("a guest folder has no filesystems of its own: nothing to change");
      return;
    }
    const plans = await planRenamings(ctx, disk);
    if (!plans.length) return;
    // virt-sysprep changes the UUIDs only (its manual warns the guest will likely not boot); the files that
    // name them change with them here, before the UUIDs do, since the filesystems are mounted now.
    for (const pattern of REFERENCES)
      for (const path of await ctx.glob(pattern))
        await ctx.editText(path, (text) => {
          let out = text;
          const renamed: string[] = [];
          for (const { filesystem, next } of plans) {
            const re = new RegExp(escape(filesystem.uuid), "gi");
            if (re.test(out)) {
              out = out.replace(re, (found) => (found === found.toUpperCase() ? next.toUpperCase() : next));
              renamed.push(filesystem.guestPath ?? filesystem.device);
            }
          }
          return renamed.length ? { text: out, detail: `new UUID of ${renamed.join(", ")}` } : null;
        });
    if (ctx.inspection.distribution.family === "redhat" || ctx.inspection.distribution.family === "suse")
      ctx.warn("a host-only dracut initramfs may name the old UUIDs: rebuild it in the guest (dracut -f)");
    for (const { filesystem, next } of plans) {
      ctx.deferDeviceChange({
        device: filesystem.device,
        path: filesystem.guestPath ?? filesystem.device,
        detail: `UUID ${filesystem.uuid} -> ${next}`,
        ifFailed: `the guest's fstab and boot files already name ${next}: give the filesystem that UUID (${uuidTool(filesystem.type)}) before booting it`,
        apply: () => setFilesystemUuid(filesystem.device, filesystem.type, next),
      });
    }
  },
});
