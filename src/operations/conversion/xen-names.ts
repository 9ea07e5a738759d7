/**
 * The names a Xen paravirtual guest uses that do not exist on a KVM (or any PC) machine, shared by the
 * detection and the edits so both agree on what "Xen-only" means.
 */

/** The Xen console: `hvc0` (pvops kernels) or `xvc0` (the 2.6.18 Xen kernels of CentOS 5 and their kin). */
export const XEN_CONSOLE = /\b(?:hvc|xvc)\d+\b/;

/** A `console=` kernel argument naming the Xen console. */
export const XEN_CONSOLE_ARGUMENT = /^console=(?:hvc|xvc)\d+(?:,.*)?$/;

/** Xen's split block and network drivers, under every name a modprobe alias has given them. */
export const XEN_DRIVER = /^(?:xenblk|xennet|xen[-_]blkfront|xen[-_]netfront|xen[-_]vbd|xen[-_]vnif)$/;

/**
 * A disk or partition by kernel name (`/dev/xvda1`, `/dev/sda`, `/dev/hda2`, `/dev/vdb`): such names depend on
 * the hypervisor's bus, so they change when the guest moves; `/dev/xvd*` never exists outside Xen.
 */
export const DISK_NAME = /^\/dev\/(?:xvd|sd|hd|vd)[a-z]{1,3}\d*$/;

/** A Xen virtual disk (`/dev/xvda1`, and RHEL 6's renamed `/dev/xvde1`). */
export const XEN_DISK_NAME = /^\/dev\/xvd[a-z]{1,3}\d*$/;

/** `/dev/sda1`-style names, which Xen gave a bare filesystem image when it was attached as a whole disk. */
export const SCSI_DISK_NAME = /^\/dev\/sd[a-z]{1,3}\d*$/;

/**
 * Whether a root filesystem reference should become `UUID=…` when the caller knows the root's UUID: kernel
 * disk names and identity references that may not survive the copy (a label, a partition's id, another UUID)
 * do; a device-mapper or LVM path (`/dev/mapper/vg-root`, `/dev/vg/root`), a RAID device and anything else
 * we cannot judge stay as they are.
 */
export function isReplaceableRootReference(reference: string): boolean {
  return (
    DISK_NAME.test(reference) ||
    /^(?:UUID|LABEL|PARTUUID|PARTLABEL)=/.test(reference) ||
    reference.startsWith("/dev/disk/by-")
  );
}

/** The Xen driver a modprobe alias line names (`alias scsi_hostadapter xenblk` → "xenblk"), or null. */
export function xenModuleAlias(line: string): string | null {
  const m = /^\s*alias\s+(\S+)\s+(\S+)\s*$/.exec(line);
  return m && XEN_DRIVER.test(m[2]!) ? m[2]! : null;
}

/** Whether an active /etc/inittab line runs something on the Xen console (`co:2345:respawn:/sbin/agetty xvc0 …`). */
export function isXenConsoleInittabLine(line: string): boolean {
  if (line.trim().startsWith("#")) return false;
  return XEN_CONSOLE.test(line.split(":").slice(3).join(":"));
}

/** A getty program in a command (getty, agetty, mingetty). */
export const GETTY_COMMAND = /\b(?:a|min)?getty\b/;

/** The `exec` stanzas of an upstart job (a valid job has at most one). */
export function upstartExecs(job: string): string[] {
  return job
    .split("\n")
    .map((l) => /^\s*exec\s+(.*)$/.exec(l)?.[1])
    .filter((e): e is string => e !== undefined);
}

/** Whether an upstart job file is a getty on the Xen console (Ubuntu's hvc0.conf, or one running it). */
export function isXenConsoleUpstartJob(name: string, job: string | null): boolean {
  if (/^(?:hvc|xvc)\d+\.conf$/.test(name)) return true;
  return job !== null && upstartExecs(job).some((e) => GETTY_COMMAND.test(e) && XEN_CONSOLE.test(e));
}

/** A systemd getty unit instance on the Xen console (`serial-getty@hvc0.service`). */
export const XEN_GETTY_UNIT = /^(?:serial-)?getty@(?:hvc|xvc)\d+\.service$/;
