/**
 * The grub.cfg written into the guest: one entry booting the chosen kernel, shown on the screen and on the
 * first serial port (what a cloud console or a headless test reads), the kernel's console on both too.
 */

export interface GrubConfigRequest {
  /** The distribution's name for the menu ("Debian GNU/Linux 12 (bookworm)"). */
  readonly title: string;
  readonly bootFilesystemUuid: string;
  /** Paths inside the boot filesystem: "/boot/vmlinuz-V", or "/vmlinuz-V" when /boot is its own filesystem. */
  readonly kernel: string;
  readonly initramfs: string | null;
  readonly kernelArguments: readonly string[];
}

/** The kernel command line: root by UUID, read-only until the guest's fsck, consoles on screen and serial. */
export function defaultKernelArguments(rootUuid: string): string[] {
  return [`root=UUID=${rootUuid}`, "ro", "console=tty0", "console=ttyS0,115200"];
}

/** GRUB reads a single-quoted word literally except for the quote itself. */
function quoted(text: string): string {
  return `'${text.replace(/'/g, "'\\''")}'`;
}

export function grubConfig(request: GrubConfigRequest): string {
  for (const p of [request.kernel, request.initramfs ?? "/"])
    if (!/^\/[\w.+~@%=,/-]*$/.test(p)) throw new RangeError(`a boot file's name GRUB cannot be given safely: ${p}`);
  for (const a of request.kernelArguments)
    if (!/^[\w.,:=/+@%-]+$/.test(a)) throw new RangeError(`a kernel argument GRUB cannot be given safely: ${a}`);
  return [
    "# Written by chromogenic bootable. The guest's earlier grub.cfg, if any, is beside it as",
    "# grub.cfg.before-chromogenic; update-grub replaces this file when the guest's own grub-pc is installed.",
    "set default=0",
    "set timeout=2",
    "serial --unit=0 --speed=115200",
    "terminal_input console serial",
    "terminal_output console serial",
    `search --no-floppy --fs-uuid --set=root ${request.bootFilesystemUuid}`,
    `menuentry ${quoted(request.title)} {`,
    `\tlinux\t${request.kernel} ${request.kernelArguments.join(" ")}`,
    ...(request.initramfs ? [`\tinitrd\t${request.initramfs}`] : []),
    "}",
    "",
  ].join("\n");
}
