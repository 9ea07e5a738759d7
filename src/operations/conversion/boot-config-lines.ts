/**
 * The lines of boot loader configuration files that carry a kernel command line, found and rebuilt with the
 * rest of the line untouched.
 */

/** GRUB 2's defaults, from which update-grub writes grub.cfg. */
export const GRUB_DEFAULTS_FILE = "/etc/default/grub";
/** GRUB legacy's configuration, which pygrub reads too (CentOS's /etc/grub.conf is usually a link to it). */
export const GRUB_LEGACY_FILES = ["/boot/grub/menu.lst", "/boot/grub/grub.conf", "/etc/grub.conf"] as const;
/** GRUB 2's generated configuration (pygrub reads it as well). */
export const GRUB2_FILES = ["/boot/grub/grub.cfg", "/boot/grub2/grub.cfg"] as const;
/** Boot Loader Specification entries (RHEL 8 and later). */
export const BLS_ENTRIES_FOLDER = "/boot/loader/entries";

export interface ArgumentLine {
  /** The kernel image the line boots, when it names one. */
  readonly image: string | null;
  readonly args: string;
  /** The whole line with `args` in place of the arguments. */
  rebuild(args: string): string;
}

/** `kernel /vmlinuz-V ro root=…` (not Xen's own hypervisor, `kernel /boot/xen.gz`), and Debian's `# kopt=…`. */
export function grubLegacyArgumentLine(line: string): ArgumentLine | null {
  const kernel = /^(\s*kernel\s+)(\S+)(\s*)(.*?)(\s*)$/.exec(line);
  if (kernel) {
    const [, lead, image, gap, args, tail] = kernel as unknown as string[];
    if (/(?:^|\/)xen[^/]*\.gz$/.test(image!)) return null;
    return { image: image!, args: args!, rebuild: (a) => `${lead}${image}${gap || (a ? " " : "")}${a}${tail}` };
  }
  const kopt = /^(\s*#\s*kopt=)(.*?)(\s*)$/.exec(line);
  if (kopt) {
    const [, lead, args, tail] = kopt as unknown as string[];
    return { image: null, args: args!, rebuild: (a) => `${lead}${a}${tail}` };
  }
  return null;
}

/** `linux /boot/vmlinuz-V root=… ro` in grub.cfg (and linux16, linuxefi). */
export function grub2ArgumentLine(line: string): ArgumentLine | null {
  const m = /^(\s*linux(?:16|efi)?\s+)(\S+)(\s*)(.*?)(\s*)$/.exec(line);
  if (!m) return null;
  const [, lead, image, gap, args, tail] = m as unknown as string[];
  return { image: image!, args: args!, rebuild: (a) => `${lead}${image}${gap || (a ? " " : "")}${a}${tail}` };
}

/** `GRUB_CMDLINE_LINUX="…"` and `GRUB_CMDLINE_LINUX_DEFAULT='…'` (or unquoted) in /etc/default/grub. */
export function grubDefaultsArgumentLine(line: string): ArgumentLine | null {
  const m = /^(\s*(?:export\s+)?GRUB_CMDLINE_LINUX(?:_DEFAULT)?=)(["']?)(.*)\2(\s*)$/.exec(line);
  if (!m) return null;
  const [, lead, quote, args, tail] = m as unknown as string[];
  // An unquoted value cannot hold a space: quote it when it comes to need one.
  const quoted = (a: string) => quote || (a.includes(" ") ? '"' : "");
  return { image: null, args: args!, rebuild: (a) => `${lead}${quoted(a)}${a}${quoted(a)}${tail}` };
}

/** `options root=… ro` in a Boot Loader Specification entry. */
export function blsArgumentLine(line: string): ArgumentLine | null {
  const m = /^(\s*options\s+)(.*?)(\s*)$/.exec(line);
  if (!m) return null;
  const [, lead, args, tail] = m as unknown as string[];
  return { image: null, args: args!, rebuild: (a) => `${lead}${a}${tail}` };
}

/** Boot loader configuration files that carry kernel command lines, and how to find them there. */
export interface CommandLineFiles {
  readonly files: readonly string[];
  readonly parse: (line: string) => ArgumentLine | null;
  /** Whether a kernel line there must name the root itself (update-grub adds it from /etc/default/grub). */
  readonly rootRequired: boolean;
}

export const GRUB_DEFAULTS: CommandLineFiles = {
  files: [GRUB_DEFAULTS_FILE],
  parse: grubDefaultsArgumentLine,
  rootRequired: false,
};
export const GRUB_LEGACY: CommandLineFiles = {
  files: GRUB_LEGACY_FILES,
  parse: grubLegacyArgumentLine,
  rootRequired: true,
};
export const GRUB2: CommandLineFiles = { files: GRUB2_FILES, parse: grub2ArgumentLine, rootRequired: false };
/** Every one, in the order a conversion edits them. */
export const COMMAND_LINE_FILES: readonly CommandLineFiles[] = [GRUB_DEFAULTS, GRUB_LEGACY, GRUB2];
