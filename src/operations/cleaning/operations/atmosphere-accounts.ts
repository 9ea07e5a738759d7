import { defineOperation } from "../cleaning-operation.js";
import { lineList, mapLines, removeLines } from "../line-edits.js";

export default defineOperation({
  name: "atmosphere-accounts",
  description:
    "Atmosphere's account edits: empty the users group's members, drop member-less groups with GID 1000-1999 no account uses, drop sshd's AllowGroups users root",
  defaultEnabled: false,
  families: "all",
  async perform(ctx) {
    // Primary groups of the accounts that remain are kept: the original deleted them too, leaving kept
    // accounts with a dangling GID.
    const primary = new Set<string>();
    for (const line of ((await ctx.readText("/etc/passwd")) ?? "").split("\n")) {
      const gid = line.split(":")[3];
      if (gid) primary.add(gid);
    }
    const dropped = new Set<string>();
    await ctx.editText("/etc/group", (text) => {
      const emptied = mapLines(text, (line) => (/^users:[^:]*:100:./.test(line) ? line.replace(/:[^:]*$/, ":") : line));
      const r = removeLines(emptied.text, (line) => {
        const f = line.split(":");
        const drop = f.length === 4 && /^1\d{3}$/.test(f[2]!) && f[3] === "" && !primary.has(f[2]!);
        if (drop) dropped.add(f[0]!);
        return drop;
      });
      const parts = [];
      if (emptied.numbers.length) parts.push(`emptied the users group's members (${lineList(emptied.numbers)})`);
      if (r) parts.push(`removed member-less groups ${[...dropped].join(", ")}`);
      return parts.length ? { text: r?.text ?? emptied.text, detail: parts.join("; ") } : null;
    });
    if (dropped.size)
      await ctx.editText("/etc/gshadow", (text) => {
        const r = removeLines(text, (line) => dropped.has(line.split(":")[0]!));
        return r && { text: r.text, detail: `removed groups ${[...dropped].join(", ")}` };
      });
    await ctx.editText("/etc/ssh/sshd_config", (text) => {
      const r = removeLines(text, (line) => /^\s*AllowGroups\s+users\s+root\b/.test(line));
      return r && { text: r.text, detail: `removed AllowGroups users root (${lineList(r.numbers)})` };
    });
  },
});
