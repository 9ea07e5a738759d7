import { BLS_ENTRIES_FOLDER, blsArgumentLine, COMMAND_LINE_FILES, type ArgumentLine } from "../boot-config-lines.js";
import type { ConversionContext } from "../conversion-context.js";
import { defineEdit } from "../conversion-edit.js";
import { convertKernelArguments, type KernelArgumentOptions } from "../kernel-arguments.js";
import { rewriteLines } from "../line-changes.js";

async function convertFile(
  ctx: ConversionContext,
  path: string,
  parse: (line: string) => ArgumentLine | null,
  options: KernelArgumentOptions,
): Promise<void> {
  await ctx.editLines(path, (text) =>
    rewriteLines(text, (line) => {
      const found = parse(line);
      if (!found) return null;
      const args = convertKernelArguments(found.args, options);
      return args === found.args ? null : { kind: "changed", after: [found.rebuild(args)] };
    }),
  );
}

export default defineEdit({
  name: "kernel-command-line",
  description:
    "Kernel command lines in /etc/default/grub, GRUB legacy's menu.lst/grub.conf, grub.cfg and BLS entries: console=tty0 console=ttyS0,115200 in place of the Xen console, xencons= removed, root=UUID=",
  defaultEnabled: true,
  async perform(ctx) {
    const rootUuid = ctx.rootUuid;
    // update-grub adds root= itself from /etc/default/grub, so one is changed there only when present; a GRUB
    // legacy kernel line without root= would leave the kernel looking for its root, so one is added there.
    for (const config of COMMAND_LINE_FILES)
      for (const path of await ctx.realPaths(config.files))
        await convertFile(ctx, path, config.parse, { rootUuid, addRoot: config.rootRequired });
    for (const name of await ctx.tree.list(BLS_ENTRIES_FOLDER))
      if (name.endsWith(".conf"))
        await convertFile(ctx, `${BLS_ENTRIES_FOLDER}/${name}`, blsArgumentLine, { rootUuid, addRoot: true });
  },
});
