import { defineEdit } from "../conversion-edit.js";
import { rewriteLines } from "../line-changes.js";

const BLOCK_START = /\bdepmod -a\b/;
const BLOCK_END = /\/usr\/bin\/ruby \/usr\/sbin\/atmo_boot\b/;
const HOOK = /\batmo_boot\b/;

/**
 * The lines to remove: each block from `depmod -a` to the `/usr/bin/ruby /usr/sbin/atmo_boot` line (the
 * nearest start before each end, so an unrelated `depmod -a` earlier in the file stays), then any other line
 * still running atmo_boot. A start with no end after it removes nothing (the original's sed deleted from there
 * to the end of the file).
 */
export function atmosphereHookLines(lines: readonly string[]): Set<number> {
  const drop = new Set<number>();
  lines.forEach((line, end) => {
    if (!BLOCK_END.test(line) || line.trim().startsWith("#")) return;
    let start = end;
    for (let i = end - 1; i >= 0 && !drop.has(i); i--)
      if (BLOCK_START.test(lines[i]!)) {
        start = i;
        break;
      }
    for (let i = start; i <= end; i++) drop.add(i);
  });
  lines.forEach((line, i) => {
    if (HOOK.test(line) && !line.trim().startsWith("#")) drop.add(i);
  });
  return drop;
}

export default defineEdit({
  name: "atmosphere-boot-hooks",
  description:
    "Remove Atmosphere's boot hook from /etc/rc.local and /etc/rc.d/rc.local: the block from `depmod -a` to `/usr/bin/ruby /usr/sbin/atmo_boot`, and other atmo_boot lines",
  defaultEnabled: true,
  async perform(ctx) {
    for (const path of await ctx.realPaths(["/etc/rc.local", "/etc/rc.d/rc.local"]))
      await ctx.editLines(path, (text) => {
        const drop = atmosphereHookLines(text.split("\n"));
        return rewriteLines(text, (_line, i) => (drop.has(i) ? { kind: "removed", after: [] } : null));
      });
  },
});
