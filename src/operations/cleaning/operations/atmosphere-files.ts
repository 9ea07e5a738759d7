import { defineOperation } from "../cleaning-operation.js";

export default defineOperation({
  name: "atmosphere-files",
  description:
    "Remove Atmosphere's deployment files (/var/log/atmo, rc.local.atmo, /opt/cyverse, atmo_boot.py), empty /mnt",
  defaultEnabled: false,
  families: "all",
  async perform(ctx) {
    for (const path of ["/var/log/atmo", "/etc/rc.local.atmo", "/opt/cyverse", "/usr/sbin/atmo_boot.py"])
      await ctx.remove(path);
    // The original reset /mnt (where Atmosphere mounted volumes) and /proc; an image's /proc should be an
    // empty mount point, so anything in it is debris.
    await ctx.emptyFolder("/mnt");
    await ctx.emptyFolder("/proc");
  },
});
