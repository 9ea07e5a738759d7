import { defineOperation } from "../cleaning-operation.js";

/** Editor and tool backups: `file~` (emacs, vim with backup), `file.bak`. */
const BACKUP = /(~|\.bak)$/s;

export default defineOperation({
  name: "backup-files",
  description: "Remove editor backup files (*~, *.bak) under /etc, /root, /srv, /tmp and /var",
  defaultEnabled: true,
  families: "all",
  async perform(ctx) {
    const found: string[] = [];
    for (const top of ["/etc", "/root", "/srv", "/tmp", "/var"])
      await ctx.walk(top, async (path, st) => {
        if ((st.isFile() || st.isSymbolicLink()) && BACKUP.test(path.slice(path.lastIndexOf("/") + 1)))
          found.push(path);
      });
    for (const path of found) await ctx.remove(path);
  },
});
