import { z } from "zod";
import { defineOperation } from "../cleaning-operation.js";
import { bare, DEPLOYMENT_BLOCKS, describeBlocks, removeMarkedBlocks, splitLines } from "../line-edits.js";

const Params = z.strictObject({
  /** Also remove the lines after sudoers' `#includedir /etc/sudoers.d` (the directive itself stays). */
  "remove-after-includedir": z.boolean().optional(),
});

const INCLUDEDIR = /^\s*[#@]includedir\s+\/etc\/sudoers\.d\/?\s*$/;

/** Removes the lines after the includedir directive, keeping it and everything before it byte for byte. */
export function removeAfterIncludedir(text: string): { text: string; count: number } | null {
  const lines = splitLines(text);
  const at = lines.findIndex((l) => INCLUDEDIR.test(bare(l)));
  if (at < 0 || at === lines.length - 1) return null;
  let directive = lines[at]!;
  if (!directive.endsWith("\n")) directive += "\n";
  return { text: [...lines.slice(0, at), directive].join(""), count: lines.length - at - 1 };
}

export default defineOperation({
  name: "atmosphere-blocks",
  description:
    "Remove Atmosphere, Nagios and Sensu marked blocks from sudoers, sshd_config and skel's .bashrc, line-exactly",
  defaultEnabled: false,
  families: "all",
  parameters: Params,
  async perform(ctx) {
    const params = Params.parse(ctx.params);
    for (const path of ["/etc/sudoers", "/etc/ssh/sshd_config", "/etc/skel/.bashrc"]) {
      await ctx.editText(path, (text) => {
        const r = removeMarkedBlocks(text, DEPLOYMENT_BLOCKS);
        for (const u of r.unterminated)
          ctx.warn(`${path}: "${u.label}" block starting at line ${u.line} has no end marker; left in place`);
        return r.removed.length ? { text: r.text, detail: describeBlocks(r.removed) } : null;
      });
    }
    if (params["remove-after-includedir"])
      await ctx.editText("/etc/sudoers", (text) => {
        const r = removeAfterIncludedir(text);
        return r && { text: r.text, detail: `removed ${r.count} line(s) after the includedir directive (kept)` };
      });
  },
});
