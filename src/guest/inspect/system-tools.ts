import { readlink } from "node:fs/promises";
import { guestPathExists, readGuestText } from "../guest-files.js";
import { resolveGuestPath } from "../guest-path.js";

export type PackageManager = "apt" | "dnf" | "yum" | "zypper" | "pacman" | "apk" | "unknown";
export type InitSystem = "systemd" | "upstart" | "openrc" | "sysvinit" | "unknown";

/** The package manager, from the tools' own binaries and databases (nothing in the guest is run). */
export async function detectPackageManager(root: string): Promise<PackageManager> {
  const checks: Array<[PackageManager, string[]]> = [
    ["apt", ["/usr/bin/apt-get", "/var/lib/dpkg/status"]],
    ["dnf", ["/usr/bin/dnf"]],
    ["yum", ["/usr/bin/yum"]],
    ["zypper", ["/usr/bin/zypper"]],
    ["pacman", ["/usr/bin/pacman"]],
    ["apk", ["/sbin/apk", "/etc/apk/world"]],
  ];
  for (const [manager, paths] of checks)
    for (const path of paths) if (await guestPathExists(root, path)) return manager;
  return "unknown";
}

/** The init system: where /sbin/init leads, else which init's files are present. */
export async function detectInitSystem(root: string): Promise<InitSystem> {
  const init = await resolveGuestPath(root, "/sbin/init", { followLast: false });
  const target = await readlink(init).catch(() => "");
  if (target.includes("systemd")) return "systemd";
  if (target.includes("openrc")) return "openrc";
  if (await guestPathExists(root, "/lib/systemd/systemd")) return "systemd";
  if (await guestPathExists(root, "/usr/lib/systemd/systemd")) return "systemd";
  if (await guestPathExists(root, "/sbin/upstart")) return "upstart";
  if (await guestPathExists(root, "/sbin/openrc")) return "openrc";
  if ((await readGuestText(root, "/etc/inittab")) !== null) return "sysvinit";
  return "unknown";
}

/** Whether cloud-init is installed: its program or its configuration. */
export async function hasCloudInit(root: string): Promise<boolean> {
  for (const path of ["/usr/bin/cloud-init", "/etc/cloud/cloud.cfg"])
    if (await guestPathExists(root, path)) return true;
  return false;
}
