import { GRUB2, GRUB_DEFAULTS, GRUB_LEGACY, type ArgumentLine, type CommandLineFiles } from "./boot-config-lines.js";
import { convertKernelArguments } from "./kernel-arguments.js";

/** Reads a guest text file as the run sees it (a dry run's planned edits included). */
type ReadText = (path: string) => Promise<string | null>;

async function configured(
  readText: ReadText,
  { files, parse }: CommandLineFiles,
  version: string,
): Promise<string | null> {
  for (const path of files)
    for (const line of ((await readText(path)) ?? "").split("\n")) {
      const found = parse(line);
      if (found?.image && found.image.split("/").at(-1) === `vmlinuz-${version}`) return found.args;
    }
  return null;
}

/**
 * The kernel command line for a boot loader configuration we write for `version`: the guest's own (its GRUB
 * legacy or GRUB 2 entry for that kernel, else /etc/default/grub's), converted for a PC, with the root by UUID,
 * the serial console when it names none, and `ro` when it says neither ro nor rw.
 */
export async function bootArguments(
  readText: ReadText,
  version: string,
  rootUuid: string | undefined,
): Promise<string> {
  let args = (await configured(readText, GRUB_LEGACY, version)) ?? (await configured(readText, GRUB2, version));
  if (args === null) {
    const defaults = ((await readText(GRUB_DEFAULTS.files[0]!)) ?? "").split("\n").map(GRUB_DEFAULTS.parse);
    args = defaults
      .filter((d): d is ArgumentLine => d !== null)
      .map((d) => d.args)
      .join(" ");
  }
  const converted = convertKernelArguments(args.trim(), { rootUuid, addRoot: true, addConsole: true }).split(/\s+/);
  const tokens = converted.filter((t) => t && !t.startsWith("BOOT_IMAGE="));
  if (!tokens.includes("ro") && !tokens.includes("rw")) {
    const root = tokens.findIndex((t) => t.startsWith("root="));
    tokens.splice(root + 1, 0, "ro");
  }
  return tokens.join(" ");
}
