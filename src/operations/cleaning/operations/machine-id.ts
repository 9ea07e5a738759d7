import { defineOperation } from "../cleaning-operation.js";

export default defineOperation({
  name: "machine-id",
  description:
    "Empty /etc/machine-id in place (systemd makes a new one at boot), and /var/lib/dbus/machine-id when it is a file",
  defaultEnabled: true,
  families: "all",
  async perform(ctx) {
    // Emptied, never removed: an empty file tells systemd "first boot, generate one", while a missing file
    // on a read-only /etc leaves the machine without an id. D-Bus's copy is usually a symlink to
    // /etc/machine-id; a symlink is left as it is.
    await ctx.truncate("/etc/machine-id");
    if ((await ctx.kind("/var/lib/dbus/machine-id")) === "file") await ctx.truncate("/var/lib/dbus/machine-id");
  },
});
