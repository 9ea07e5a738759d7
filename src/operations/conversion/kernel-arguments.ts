import { isReplaceableRootReference, XEN_CONSOLE_ARGUMENT } from "./xen-names.js";

/** The consoles of a PC guest: the screen, and the first serial port (where clouds and our tests read). */
export const SERIAL_CONSOLE = ["console=tty0", "console=ttyS0,115200"] as const;

export interface KernelArgumentOptions {
  /** The root filesystem's UUID: `root=` naming a disk, label or other UUID becomes `root=UUID=…`. */
  readonly rootUuid?: string;
  /** Add `root=UUID=…` when there is no `root=` (a grub-legacy kernel line must name the root). */
  readonly addRoot?: boolean;
  /** Add the serial console when no `console=` is left (a boot loader configuration we write ourselves). */
  readonly addConsole?: boolean;
}

/** Splits a command line at spaces outside double quotes (`foo="a b"` stays one argument). */
function tokenize(args: string): string[] {
  return args.match(/(?:[^\s"]+|"[^"]*")+/g) ?? [];
}

/**
 * Converts a Xen guest's kernel command line for a PC: the Xen console (`console=hvc0`, `console=xvc0`) becomes
 * `console=tty0 console=ttyS0,115200` in its place, Xen's `xencons=` goes, and `root=` names the root by UUID.
 * Returns the line unchanged (spacing and all) when nothing applies.
 */
export function convertKernelArguments(args: string, options: KernelArgumentOptions = {}): string {
  const { rootUuid } = options;
  const tokens = tokenize(args);
  const out: string[] = [];
  let serialPlaced = false;
  for (const token of tokens) {
    if (XEN_CONSOLE_ARGUMENT.test(token)) {
      if (!serialPlaced) out.push(...SERIAL_CONSOLE.filter((c) => !tokens.includes(c)));
      serialPlaced = true;
      continue;
    }
    if (token.startsWith("xencons=")) continue;
    if (rootUuid && token.startsWith("root=")) {
      const reference = token.slice("root=".length);
      const replace = reference !== `UUID=${rootUuid}` && isReplaceableRootReference(reference);
      out.push(replace ? `root=UUID=${rootUuid}` : token);
      continue;
    }
    out.push(token);
  }
  if (options.addRoot && rootUuid && !out.some((t) => t.startsWith("root="))) out.unshift(`root=UUID=${rootUuid}`);
  if (options.addConsole && !out.some((t) => t.startsWith("console="))) out.push(...SERIAL_CONSOLE);
  if (out.length === tokens.length && out.every((t, i) => t === tokens[i])) return args;
  return out.join(" ");
}
