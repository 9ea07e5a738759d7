/**
 * Whether a guest is a Xen paravirtual guest, told from its files alone (nothing runs): the names only Xen
 * gives disks, consoles and drivers, its kernels and kernel command lines. Each finding is kept as evidence, so
 * the report says why a guest was (or was not) converted.
 */
import { guestPathExists, listGuestDir, readGuestText } from "../../guest/guest-files.js";
import { resolveGuestPath } from "../../guest/guest-path.js";
import { COMMAND_LINE_FILES, type CommandLineFiles } from "./boot-config-lines.js";
import { tabFields } from "./fstab-lines.js";
import {
  isXenConsoleInittabLine,
  isXenConsoleUpstartJob,
  SCSI_DISK_NAME,
  XEN_CONSOLE_ARGUMENT,
  XEN_DISK_NAME,
  XEN_GETTY_UNIT,
  xenModuleAlias,
} from "./xen-names.js";

export interface XenEvidence {
  /** The guest file (or folder) it was found in. */
  readonly file: string;
  readonly finding: string;
  /** Strong evidence alone makes a guest a Xen guest; weak evidence (a GRUB legacy menu) only supports it. */
  readonly strong: boolean;
}

export interface XenDetection {
  readonly xen: boolean;
  readonly evidence: readonly XenEvidence[];
}

export interface XenDetectionOptions {
  /**
   * The image is a bare filesystem (no partition table): a root on `/dev/sda1` then means Xen attached the
   * filesystem as a whole disk, as Eucalyptus and early EC2 did.
   */
  readonly bareFilesystem?: boolean;
}

/** Driver names the module lists (/etc/modules, initramfs-tools' list) give Xen's block and network fronts. */
const XEN_MODULE_LISTED = /^\s*(xen[-_]blkfront|xen[-_]netfront|xenblk|xennet)\b/;

function lines(text: string | null): string[] {
  return text === null ? [] : text.split("\n");
}

/** Calls `found` with each kernel command line in the files, each file read once (CentOS links them together). */
async function kernelLines(
  root: string,
  { files, parse }: CommandLineFiles,
  seen: Set<string>,
  found: (file: string, args: string) => void,
): Promise<void> {
  for (const path of files) {
    const real = await resolveGuestPath(root, path, { followLast: true }).catch(() => null);
    if (real === null || seen.has(real)) continue;
    seen.add(real);
    for (const line of lines(await readGuestText(root, path))) {
      const parsed = parse(line);
      if (parsed) found(path, parsed.args);
    }
  }
}

export async function detectXenGuest(root: string, options: XenDetectionOptions = {}): Promise<XenDetection> {
  const evidence: XenEvidence[] = [];
  const add = (file: string, finding: string, strong = true) => {
    if (!evidence.some((e) => e.file === file && e.finding === finding)) evidence.push({ file, finding, strong });
  };

  for (const line of lines(await readGuestText(root, "/etc/fstab"))) {
    const [device, mountPoint, type] = tabFields(line) ?? [];
    if (!device || !mountPoint) continue;
    if (XEN_DISK_NAME.test(device))
      add(
        "/etc/fstab",
        type === "swap" ? `swaps on the Xen disk ${device}` : `mounts ${mountPoint} from the Xen disk ${device}`,
      );
    else if (options.bareFilesystem && mountPoint === "/" && SCSI_DISK_NAME.test(device))
      add("/etc/fstab", `mounts / from ${device}, and the image is a bare filesystem (a Xen whole-disk attachment)`);
    if (type === "xenfs") add("/etc/fstab", `mounts xenfs on ${mountPoint}`);
  }

  for (const line of lines(await readGuestText(root, "/etc/inittab")))
    if (isXenConsoleInittabLine(line)) add("/etc/inittab", `runs a getty on the Xen console: ${line.trim()}`);
  for (const name of await listGuestDir(root, "/etc/init"))
    if (name.endsWith(".conf") && isXenConsoleUpstartJob(name, await readGuestText(root, `/etc/init/${name}`)))
      add(`/etc/init/${name}`, "an upstart job for a getty on the Xen console");
  for (const folder of await listGuestDir(root, "/etc/systemd/system"))
    if (folder.endsWith(".wants"))
      for (const name of await listGuestDir(root, `/etc/systemd/system/${folder}`))
        if (XEN_GETTY_UNIT.test(name))
          add(`/etc/systemd/system/${folder}/${name}`, "a getty enabled on the Xen console");

  const modprobe = [
    "/etc/modprobe.conf",
    ...(await listGuestDir(root, "/etc/modprobe.d")).map((n) => `/etc/modprobe.d/${n}`),
  ];
  for (const path of modprobe)
    for (const line of lines(await readGuestText(root, path)))
      if (xenModuleAlias(line)) add(path, `aliases a Xen driver: ${line.trim()}`);
  const moduleLists = [
    "/etc/modules",
    "/etc/initramfs-tools/modules",
    ...(await listGuestDir(root, "/etc/modules-load.d")).map((n) => `/etc/modules-load.d/${n}`),
  ];
  for (const path of moduleLists)
    for (const line of lines(await readGuestText(root, path))) {
      const m = XEN_MODULE_LISTED.exec(line);
      if (m) add(path, `loads the Xen driver ${m[1]}`);
    }

  for (const name of await listGuestDir(root, "/boot"))
    if (/^vmlinu[xz]-.*xen/i.test(name)) add(`/boot/${name}`, "a Xen-only kernel");
  const xenArguments = (file: string, args: string) => {
    for (const arg of args.split(/\s+/))
      if (XEN_CONSOLE_ARGUMENT.test(arg) || arg.startsWith("xencons=")) add(file, `a kernel command line with ${arg}`);
  };
  const seen = new Set<string>();
  for (const config of COMMAND_LINE_FILES) await kernelLines(root, config, seen, xenArguments);
  // pygrub boots a Xen guest from its GRUB legacy menu; many PCs had one too, so it only supports the rest.
  if (await guestPathExists(root, "/boot/grub/menu.lst"))
    add("/boot/grub/menu.lst", "a GRUB legacy menu, which Xen's pygrub reads", false);

  return { xen: evidence.some((e) => e.strong), evidence };
}
