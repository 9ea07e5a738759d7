import { defineOperation } from "../cleaning-operation.js";
import { bare, lineList, splitLines } from "../line-edits.js";

/**
 * Atmosphere's cloud.cfg edits, made line-exactly: the whole top-level `users:` block is commented out (the
 * original commented the key and any `- default` line anywhere in the file, leaving other list items
 * orphaned, which is invalid YAML), `disable_root` and `ssh_deletekeys` set false, matching only their own
 * top-level lines.
 */
export function editCloudCfg(text: string): { text: string; numbers: number[] } {
  const lines = splitLines(text);
  const numbers: number[] = [];
  let inUsers = false;
  const out = lines.map((l, i) => {
    const b = bare(l);
    const rest = l.slice(b.length);
    const topLevel = /^[^\s#-]/.test(b);
    if (topLevel) inUsers = false;
    let next = b;
    if (/^users\s*:/.test(b)) {
      inUsers = true;
      next = `#${b}`;
    } else if (inUsers && b.trim() !== "" && !b.startsWith("#")) next = `#${b}`;
    else if (/^disable_root\s*:\s*(true|True|TRUE|1)\s*$/.test(b))
      next = b.replace(/(true|True|TRUE)\s*$/, "false").replace(/1\s*$/, "0");
    else if (/^ssh_deletekeys\s*:\s*(true|True|TRUE|1)\s*$/.test(b))
      next = b.replace(/(true|True|TRUE)\s*$/, "false").replace(/1\s*$/, "0");
    if (next !== b) numbers.push(i + 1);
    return next + rest;
  });
  return { text: out.join(""), numbers };
}

export default defineOperation({
  name: "cloud-init-config",
  description: "Atmosphere's cloud.cfg edits: comment out the users: block, disable_root: false, ssh_deletekeys: false",
  defaultEnabled: false,
  families: "all",
  async perform(ctx) {
    await ctx.editText("/etc/cloud/cloud.cfg", (text) => {
      const r = editCloudCfg(text);
      return r.numbers.length ? { text: r.text, detail: `edited ${lineList(r.numbers)}` } : null;
    });
  },
});
