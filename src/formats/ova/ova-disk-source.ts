/**
 * A disk of an OVA as an ImageSource, read where it lies in the archive: the VMDK member (or its chunks, read
 * as one) is exposed as a SliceInput and opened by the VMDK driver, so converting a disk out of an OVA reads
 * only the grains it needs and extracts nothing. A disk without ovf:format is read as what its content is,
 * detected by the registry as for any input, and read in place too.
 *
 * A gzip-compressed file (ovf:compression="gzip", as ovftool --compress writes) cannot be read at random: it is
 * read as it inflates (inflated-disk-input.ts), which a streamOptimized VMDK allows, and nothing is extracted.
 */
import { UnsupportedFeatureError } from "../errors.js";
import { RandomAccessRequiredError } from "../inputs/require-random-access.js";
import { buildOn, type ImageInput } from "../inputs/image-input.js";
import { SliceInput } from "../inputs/slice-input.js";
import { FileInput } from "../inputs/file-input.js";
import { openImage } from "../engine/open-image.js";
import { detectFormat, getDriver } from "../registry.js";
import type { ImageSource } from "../types.js";
import type { OvaArchive, OvaDisk } from "./ova-reader.js";
import type { OvfDisk, OvfFileRef } from "./ovf-descriptor-reader.js";
import { InflatedDiskInput, inflationLimit } from "./inflated-disk-input.js";

/** The format URIs that name a VMDK (VMware's, OVF 0.9's "#sparse", VirtualBox's "#compressed"). */
export function isVmdkFormat(uri: string): boolean {
  return /vmdk/i.test(uri);
}

export function ovaDisk(ova: OvaArchive, index: number): OvaDisk {
  const disk = ova.disks.find((d) => d.index === index);
  if (!disk) {
    const have = ova.disks.map((d) => d.index).join(", ") || "none";
    throw new UnsupportedFeatureError(`${ova.path}: no disk ${index} with content in the appliance (disks: ${have})`);
  }
  return disk;
}

export async function openOvaDisk(ova: OvaArchive, index: number): Promise<ImageSource> {
  const disk = ovaDisk(ova, index);
  const label = `${ova.path}:${disk.file.href}`;
  const declared = disk.disk.format;
  checkReadable(label, disk.disk, disk.file);
  if (disk.file.compression === "gzip") return openInflatedDisk(await openDiskSlice(ova, disk), disk.disk, label);
  // A declared VMDK is opened as one; an undeclared disk is whatever its content says.
  return (await openImage(await openDiskSlice(ova, disk), { format: declared ? "vmdk" : undefined })).source;
}

/** Refuses a disk declared in a format other than VMDK, or stored with a compression other than gzip. */
export function checkReadable(label: string, disk: OvfDisk, file: OvfFileRef): void {
  if (disk.format !== "" && !isVmdkFormat(disk.format)) {
    throw new UnsupportedFeatureError(
      `${label}: disk format "${disk.format}" is not VMDK; chromogenic reads VMDK disks from OVAs`,
    );
  }
  if (file.compression !== undefined && file.compression !== "gzip") {
    throw new UnsupportedFeatureError(`${label}: compression "${file.compression}" is not supported (gzip is)`);
  }
}

/** The stored bytes of `disk` (its member, or its chunks as one), read in place. */
export async function openDiskSlice(ova: OvaArchive, disk: OvaDisk): Promise<SliceInput> {
  const ranges = disk.members.map((m) => ({ offset: m.dataOffset, length: m.size }));
  return SliceInput.of(await FileInput.open(ova.path), ranges, `${ova.path}:${disk.file.href}`, {
    closesParent: true,
  });
}

/**
 * Opens a gzip-compressed disk as it inflates, from `stored` (its compressed bytes, which the source owns): as a
 * VMDK when declared, else as what its content is. Only what can be read once in order can be read so (a
 * streamOptimized VMDK, what ovftool --compress writes); anything else is refused saying what to do, as a
 * descriptor-only VMDK is whether compressed or not (its extents cannot be in an archive).
 */
export async function openInflatedDisk(stored: ImageInput, disk: OvfDisk, label: string): Promise<ImageSource> {
  const input = InflatedDiskInput.of(stored, label, inflationLimit(disk.capacity));
  try {
    const driver = await buildOn(input, async () => (disk.format ? getDriver("vmdk") : detectFormat(input)));
    // A stream says nothing of its length: a driver that reads a disk of a given size (raw) is told the capacity.
    const takesSize = driver.openOptions?.some((o) => o.name === "size");
    const driverOptions: Record<string, string> = takesSize ? { size: String(disk.capacity) } : {};
    return (await openImage(input, { format: driver.name, driverOptions })).source;
  } catch (e) {
    if (!(e instanceof RandomAccessRequiredError)) throw e;
    throw new UnsupportedFeatureError(
      `${label}: a gzip-compressed disk is read as it inflates, once and in order, and a ${e.format} image ` +
        "cannot be read so (a streamOptimized VMDK, what ovftool --compress writes, can); extract the file " +
        "from the OVA, gunzip it and convert the disk file",
      { cause: e },
    );
  }
}
