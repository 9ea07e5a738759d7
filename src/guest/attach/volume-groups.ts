import { execFile } from "node:child_process";
import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { promisify } from "node:util";
import type { GuestJournal } from "../journal/guest-journal.js";
import { hostLvmConfig, LVM_ENV, lvmConfig } from "./lvm-config.js";
import { GuestAccessError } from "../guest-access-error.js";
import { linearVolumesAsLoops } from "./linear-volumes.js";

const execFileP = promisify(execFile);
const lvm = (command: string, args: readonly string[]) => execFileP(command, args, { env: LVM_ENV });

export interface LogicalVolume {
  readonly volumeGroup: string;
  readonly name: string;
  /** The device-mapper node, /dev/mapper/<vg>-<lv>; a loop device over its extents without device-mapper. */
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
 * Why this host's kernel cannot map logical volumes, or null when it can (or may: a missing control node is
 * made by the LVM tools themselves). Opening the control node loads dm_mod when it is a module; ENODEV or
 * ENXIO means the node is there but no driver is (a kernel built without device-mapper).
 */
async function deviceMapperMissing(): Promise<string | null> {
  try {
    await (await open("/dev/mapper/control", constants.O_RDWR)).close();
    return null;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === "ENODEV" || code === "ENXIO" ? `/dev/mapper/control: ${code}` : null;
  }
}

/**
 * Activates the volume groups found on our loop devices (and only there: see lvmConfig) and lists their logical
 * volumes. A group whose name is already active on the host is refused, since activating a second group of
 * the same name would confuse both. On a host without device-mapper, linear volumes are reached through loop
 * devices over their extents (linear-volumes.ts) and the group is not activated.
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
    // The volumes are listed from the metadata first: a group with any needs device-mapper to map them.
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
    const noDeviceMapper = lvs.stdout.trim() ? await deviceMapperMissing() : null;
    if (noDeviceMapper) {
      const linear = await linearVolumesAsLoops(journal, config, vg, readOnly);
      if (typeof linear === "string")
        throw new GuestAccessError(
          `the guest keeps filesystems in LVM (volume group ${vg}), and this host's kernel has no device-mapper ` +
            `to map its volumes (${noDeviceMapper}); ${linear}: load dm_mod, or run on a host whose kernel has it`,
        );
      for (const { name, device } of linear) volumes.push({ volumeGroup: vg, name, device });
      continue;
    }
    await journal.record({ kind: "lvm", volumeGroup: vg, devices });
    // `--readonly` forbids activation itself; read_only_volume_list maps every LV of the group read-only
    // (the loop devices under it are read-only too).
    const activation = readOnly ? `${config} activation { read_only_volume_list=[ "${vg}" ] }` : config;
    await lvm("vgchange", ["--activate", "y", "--config", activation, vg]);
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
