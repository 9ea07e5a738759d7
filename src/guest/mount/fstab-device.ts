import type { GuestBlockDevice } from "../attach/attach-image.js";
import type { FilesystemIdentity } from "./filesystem-probe.js";

export interface IdentifiedDevice extends GuestBlockDevice {
  readonly filesystem: FilesystemIdentity | null;
}

/** Device names a guest may use for its first disk, whatever hypervisor it last ran on. */
const DISK_NAME = /^\/dev\/(?:[shv]d[a-z]|xvd[a-z])(\d+)$|^\/dev\/nvme\d+n\d+p(\d+)$|^\/dev\/mmcblk\d+p(\d+)$/;

/**
 * Maps an fstab source (UUID=, LABEL=, PARTUUID=, PARTLABEL=, /dev/disk/by-*, /dev/sdaN-style names,
 * /dev/mapper and /dev/VG/LV) to one of the guest's devices we attached. Null when it names nothing of ours
 * (another disk, a network share).
 */
export function deviceForFstabSpec(spec: string, devices: readonly IdentifiedDevice[]): IdentifiedDevice | null {
  const [key, value] = splitTag(spec);
  const find = (test: (d: IdentifiedDevice) => boolean) => devices.find(test) ?? null;
  const lower = value.toLowerCase();
  switch (key) {
    case "UUID":
      return find((d) => d.filesystem?.uuid?.toLowerCase() === lower);
    case "LABEL":
      return find((d) => d.filesystem?.label === value);
    case "PARTUUID":
      return find((d) => d.partition?.partUuid?.toLowerCase() === lower);
    case "PARTLABEL":
      return find((d) => d.partition?.name === value);
  }
  const disk = DISK_NAME.exec(spec);
  if (disk) {
    const number = Number(disk[1] ?? disk[2] ?? disk[3]);
    return find((d) => d.partition?.number === number);
  }
  const mapper = /^\/dev\/mapper\/(.+)$/.exec(spec);
  if (mapper) return find((d) => d.logicalVolume !== undefined && d.device === `/dev/mapper/${mapper[1]}`);
  const vgLv = /^\/dev\/([^/]+)\/([^/]+)$/.exec(spec);
  if (vgLv) return find((d) => d.logicalVolume?.volumeGroup === vgLv[1] && d.logicalVolume?.name === vgLv[2]);
  return null;
}

function splitTag(spec: string): [string, string] {
  const byId = /^\/dev\/disk\/by-(uuid|label|partuuid|partlabel)\/(.+)$/.exec(spec);
  if (byId) return [byId[1]!.toUpperCase(), byId[2]!];
  const eq = spec.indexOf("=");
  if (eq > 0 && /^[A-Z]+$/.test(spec.slice(0, eq)))
    return [spec.slice(0, eq), spec.slice(eq + 1).replace(/^"(.*)"$/, "$1")];
  return ["", spec];
}
