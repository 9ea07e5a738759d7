import { defineOperation, type CleaningOperation } from "./cleaning-operation.js";
import { lineList, removeLines } from "./line-edits.js";

/** Where Red Hat (network-scripts) and SUSE (network) keep their per-interface ifcfg-* files. */
export const IFCFG_GLOBS = ["/etc/sysconfig/network-scripts/ifcfg-*", "/etc/sysconfig/network/ifcfg-*"];

/**
 * The shape of virt-sysprep's net-hwaddr and net-hostname: drop every `KEY=` line, for the given keys, from every
 * ifcfg-* file (Red Hat and SUSE only), reporting the removed line numbers per file.
 */
export function ifcfgKeyOperation(spec: {
  name: string;
  description: string;
  keys: readonly [string, ...string[]];
}): CleaningOperation {
  const keyLine = new RegExp(`^\\s*(${spec.keys.join("|")})\\s*=`);
  const label = spec.keys.join("/");
  return defineOperation({
    name: spec.name,
    description: spec.description,
    defaultEnabled: true,
    families: ["redhat", "suse"],
    async perform(ctx) {
      for (const pattern of IFCFG_GLOBS)
        for (const path of await ctx.glob(pattern))
          await ctx.editText(path, (text) => {
            const r = removeLines(text, (line) => keyLine.test(line));
            return r && { text: r.text, detail: `removed ${label} ${lineList(r.numbers)}` };
          });
    },
  });
}
