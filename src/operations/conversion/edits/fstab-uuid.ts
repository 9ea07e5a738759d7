import { defineEdit } from "../conversion-edit.js";
import { replaceField, tabFields } from "../fstab-lines.js";
import { commentOut, rewriteLines, type LineDecision } from "../line-changes.js";
import { DISK_NAME, isReplaceableRootReference } from "../xen-names.js";

const byUuid = (line: string, field: number, uuid: string): LineDecision => ({
  kind: "changed",
  after: [replaceField(line, field, `UUID=${uuid}`)],
});

export default defineEdit({
  name: "fstab-uuid",
  description:
    "Mount / and the other local filesystems by UUID= in /etc/fstab and /etc/crypttab; disable (comment out, with a note) entries for disks that will not exist under KVM and xenfs",
  defaultEnabled: true,
  async perform(ctx) {
    const uuids = ctx.inputs.deviceUuids;
    const rootUuid = ctx.rootUuid;
    if ((await ctx.tree.kind("/etc/fstab")) === null && (await ctx.tree.kind("/etc/crypttab")) === null)
      return "the guest has no /etc/fstab";
    let unconvertedRoot: string | null = null;
    // Names like /dev/xvda1 depend on the hypervisor's bus: the ones the caller maps become UUID=, the others
    // (Xen's swap on /dev/xvda3, an ephemeral /dev/sdb) are disabled rather than left to fail the boot, and
    // rather than deleted, so a person can see and restore them.
    await ctx.editLines("/etc/fstab", (text) =>
      rewriteLines(text, (line) => {
        const f = tabFields(line);
        if (!f || f.length < 2) return null;
        const [device, mountPoint, type] = f as [string, string, string | undefined];
        if (type === "xenfs" || mountPoint === "/proc/xen") return commentOut(line, "xenfs exists only in a Xen guest");
        if (mountPoint === "/") {
          if (rootUuid && device !== `UUID=${rootUuid}` && isReplaceableRootReference(device))
            return byUuid(line, 0, rootUuid);
          if (!rootUuid && DISK_NAME.test(device)) unconvertedRoot = device;
          return null;
        }
        const uuid = uuids[device];
        if (uuid) return byUuid(line, 0, uuid);
        if (DISK_NAME.test(device)) return commentOut(line, `${device} will not exist on the KVM machine`);
        return null;
      }),
    );
    if (unconvertedRoot)
      ctx.block(`/etc/fstab mounts / from ${unconvertedRoot}, which will not exist under KVM, and no UUID was given`);
    // crypttab: name, source device, key, options.
    await ctx.editLines("/etc/crypttab", (text) =>
      rewriteLines(text, (line) => {
        const f = tabFields(line);
        const device = f?.[1];
        if (!device) return null;
        const uuid = uuids[device];
        if (uuid) return byUuid(line, 1, uuid);
        if (DISK_NAME.test(device)) return commentOut(line, `${device} will not exist on the KVM machine`);
        return null;
      }),
    );
  },
});
