import { defineOperation } from "../cleaning-operation.js";

/** Rotated or compressed copies: `syslog.1`, `messages-20240101`, `dpkg.log.2.gz`, `auth.log.old`. */
export const ROTATED_LOG =
  /(\.\d+(\.(gz|xz|bz2|zst|lz4|Z))?|\.(gz|xz|bz2|zst|lz4|Z|old)|-\d{8}(\.(gz|xz|bz2|zst|lz4))?)$/s;

/** Files outside /var/log that record the installation or the old host (virt-sysprep's logfiles list). */
const OTHER_LOGS = [
  "/root/anaconda-ks.cfg",
  "/root/anaconda-post.log",
  "/root/initial-setup-ks.cfg",
  "/root/original-ks.cfg",
  "/root/install.log",
  "/root/install.log.syslog",
  "/var/lib/logrotate.status",
  "/var/lib/logrotate/status",
  "/var/lib/logrotate/logrotate.status",
  "/var/cache/man/*",
  "/var/cache/fontconfig/*",
  "/var/lib/fprint/*",
];

export default defineOperation({
  name: "logfiles",
  description:
    "Empty every log under /var/log in place (mode, owner, xattrs, SELinux label kept); remove rotated/compressed copies and journal files",
  defaultEnabled: true,
  families: "all",
  async perform(ctx) {
    // Emptied, not removed: daemons that do not recreate their log (or recreate it with the wrong mode,
    // owner or label — wtmp must stay root:utmp 0664) keep working. Rotated and compressed copies are
    // whole old logs nothing writes to again, so they go. systemd journal files are removed rather than
    // emptied: a 0-byte journal file is a corrupt one to journald; the journal folders stay.
    const remove: string[] = [];
    const truncate: string[] = [];
    await ctx.walk("/var/log", async (path, st) => {
      const name = path.slice(path.lastIndexOf("/") + 1);
      if (!st.isFile()) {
        if (!st.isSymbolicLink()) ctx.warn(`${path}: is not a regular file; left alone`);
        return;
      }
      if (path.startsWith("/var/log/journal/") && /\.journal~?$/.test(name)) remove.push(path);
      else if (ROTATED_LOG.test(name)) remove.push(path);
      else truncate.push(path);
    });
    for (const path of remove) await ctx.remove(path);
    for (const path of truncate) await ctx.truncate(path);
    await ctx.removeGlobs(OTHER_LOGS);
  },
});
