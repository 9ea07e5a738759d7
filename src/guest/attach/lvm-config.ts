/** LVM tools warn about every inherited descriptor (Node's pipes); the warning is noise, not a problem. */
export const LVM_ENV = { ...process.env, LVM_SUPPRESS_FD_WARNINGS: "1" };

function deviceFilter(devices: readonly string[], ours: "only" | "except"): string {
  const patterns = devices.map((d) => `"${ours === "only" ? "a" : "r"}|^${d.replace(/[|\\"$]/g, "")}$|"`);
  patterns.push(ours === "only" ? `"r|.*|"` : `"a|.*|"`);
  const list = `[ ${patterns.join(", ")} ]`;
  return `devices { use_devicesfile=0 filter=${list} global_filter=${list} obtain_device_list_from_udev=0 } activation { udev_sync=0 udev_rules=0 }`;
}

/**
 * An LVM `--config` string that limits scanning to our loop devices: the host's own volume groups are never
 * seen, activated or deactivated by us, and the host's devices file is not consulted or changed.
 */
export function lvmConfig(devices: readonly string[]): string {
  return deviceFilter(devices, "only");
}

/** The opposite view: everything except our loop devices, to ask whether the host has a group of some name. */
export function hostLvmConfig(devices: readonly string[]): string {
  return deviceFilter(devices, "except");
}
