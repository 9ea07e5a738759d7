import { defineEdit } from "../conversion-edit.js";
import { commentOut, rewriteLines } from "../line-changes.js";
import { xenModuleAlias } from "../xen-names.js";

export default defineEdit({
  name: "xen-module-aliases",
  description:
    "Disable (comment out, with a note) modprobe aliases naming Xen's drivers (xenblk, xennet) in /etc/modprobe.conf and /etc/modprobe.d",
  defaultEnabled: true,
  async perform(ctx) {
    // CentOS 5's modprobe reads every file in /etc/modprobe.d, later ones only *.conf: all are looked at
    // (only alias lines naming a Xen driver change, so nothing else is at risk).
    const files = [
      "/etc/modprobe.conf",
      ...(await ctx.tree.list("/etc/modprobe.d")).map((n) => `/etc/modprobe.d/${n}`),
    ];
    for (const path of files) {
      if ((await ctx.tree.kind(path)) === "directory") continue;
      await ctx.editLines(path, (text) =>
        rewriteLines(text, (line) => {
          const driver = xenModuleAlias(line);
          // mkinitrd puts scsi_hostadapter's driver in the initramfs: a Xen one there cannot find a KVM disk.
          return driver ? commentOut(line, `${driver} is a Xen driver; KVM guests use virtio`) : null;
        }),
      );
    }
  },
});
