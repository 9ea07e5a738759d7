import { lstat, readlink } from "node:fs/promises";
import { guestPathExists, listGuestDir, readGuestText } from "../../guest/guest-files.js";
import { resolveGuestPath } from "../../guest/guest-path.js";

/** The guest's init, which decides where a getty is configured. */
export type InitSystem = "systemd" | "upstart" | "sysvinit" | "unknown";

export interface InitDetection {
  readonly init: InitSystem;
  /** What told us, for the report ("/sbin/init -> /lib/systemd/systemd"). */
  readonly evidence: string;
}

async function linkTarget(root: string, guestPath: string): Promise<string | null> {
  try {
    const host = await resolveGuestPath(root, guestPath, { followLast: false });
    if (!(await lstat(host)).isSymbolicLink()) return null;
    return await readlink(host);
  } catch {
    return null;
  }
}

/**
 * Which init the guest boots: systemd when /sbin/init links to it; upstart when there are jobs in /etc/init
 * and either its control tool or an inittab that starts nothing (RHEL/CentOS 6 keep one for the default
 * runlevel only; Ubuntu 9.10-14.10 have none); System V init when /etc/inittab starts processes (CentOS 5,
 * Debian with sysvinit-core — checked before a systemd binary that may merely be installed); systemd when only
 * its binary is.
 */
export async function detectInitSystem(root: string): Promise<InitDetection> {
  const init = await linkTarget(root, "/sbin/init");
  if (init?.includes("systemd")) return { init: "systemd", evidence: `/sbin/init -> ${init}` };
  const jobs = (await listGuestDir(root, "/etc/init")).filter((n) => n.endsWith(".conf"));
  const inittab = await readGuestText(root, "/etc/inittab");
  const inittabStarts = inittab !== null && /^[^#:\n]*:[^:\n]*:(?:respawn|wait|once|sysinit|boot):/m.test(inittab);
  if (jobs.length && (await guestPathExists(root, "/sbin/initctl")))
    return { init: "upstart", evidence: `/sbin/initctl and ${jobs.length} job(s) in /etc/init` };
  if (jobs.length && !inittabStarts)
    return { init: "upstart", evidence: `${jobs.length} job(s) in /etc/init, and no inittab starting processes` };
  if (inittabStarts) return { init: "sysvinit", evidence: "/etc/inittab starts processes" };
  for (const path of ["/lib/systemd/systemd", "/usr/lib/systemd/systemd"])
    if (await guestPathExists(root, path)) return { init: "systemd", evidence: path };
  return { init: "unknown", evidence: "no /sbin/init link to systemd, no upstart jobs, no /etc/inittab" };
}
