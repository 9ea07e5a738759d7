import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { GuestJournal } from "../journal/guest-journal.js";
import { hostLvmConfig, LVM_ENV, lvmConfig } from "./lvm-config.js";
import { GuestAccessError } from "../guest-access-error.js";

const execFileP = promisify(execFile);
const lvm = (command: string, args: readonly string[]) => execFileP(command, args, { env: LVM_ENV });

export interface LogicalVolume {
  readonly volumeGroup: string;
  readonly name: string;
  /** The device-mapper node, /dev/mapper/<vg>-<lv>. */
  readonly device: string;
}

/** Whether the LVM tools are installed; without them an LVM guest is reported, not mounted. */
export async function lvmAvailable(): Promise<boolean> {
  return lvm("vgchange", ["--version"]).then(
    () => true,
    () => false,
  );
}

/**
 * Activates the volume groups found on our loop devices (and only there: see lvmConfig) and lists their logical
 * volumes. A group whose name is already active on the host is refused, since activating a second group of
 * the same name would confuse both.
 */
export async function activateVolumeGroups(
  journal: GuestJournal,
  devices: readonly string[],
  readOnly: boolean,
): Promise<LogicalVolume[]> {
  if (devices.length === 0 || !(await lvmAvailable())) return [];
  const config = lvmConfig(devices);
  const { stdout } = await lvm("pvs", ["--config", config, "--noheadings", "--options", "vg_name"]);
  const groups = [
    ...new Set(
      stdout
        .split("\n")
        .map((l) => l.trim())
        .filter(Boolean),
    ),
  ];
  const volumes: LogicalVolume[] = [];
  for (const vg of groups) {
    const host = await lvm("vgs", [
      "--config",
      hostLvmConfig(devices),
      "--noheadings",
      "--options",
      "vg_name",
      vg,
    ]).then(
      () => true,
      () => false,
    );
    if (host) throw new GuestAccessError(`volume group ${vg} in the guest has the same name as one on this host`);
    await journal.record({ kind: "lvm", volumeGroup: vg, devices });
    // `--readonly` forbids activation itself; read_only_volume_list maps every LV of the group read-only
    // (the loop devices under it are read-only too).
    const activation = readOnly ? `${config} activation { read_only_volume_list=[ "${vg}" ] }` : config;
    await lvm("vgchange", ["--activate", "y", "--config", activation, vg]);
    const lvs = await lvm("lvs", [
      "--config",
      config,
      "--noheadings",
      "--separator",
      "/",
      "--options",
      "vg_name,lv_name",
      vg,
    ]);
    for (const line of lvs.stdout.split("\n")) {
      const [group, name] = line.trim().split("/");
      if (group && name)
        volumes.push({
          volumeGroup: group,
          name,
          device: `/dev/mapper/${group.replaceAll("-", "--")}-${name.replaceAll("-", "--")}`,
        });
    }
  }
  return volumes;
}
