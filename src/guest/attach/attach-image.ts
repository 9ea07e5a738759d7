import { stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { convertFile } from "../../formats/engine/convert.js";
import { openImage } from "../../formats/engine/open-image.js";
import type { ProgressListener } from "../../util/events.js";
import { AbortedError, UsageError } from "../../formats/errors.js";
import { recogniseInput } from "../../formats/engine/recognise-input.js";
import { TemporaryOutputFile } from "../../formats/io/replacing-output.js";
import type { ReferencePolicy } from "../../formats/types.js";
import { stateDir, type GuestJournal } from "../journal/guest-journal.js";
import type { Partition, PartitionTable } from "../partitions/partition.js";
import { readPartitionTable } from "../partitions/read-partition-table.js";
import { attachLoop } from "./loop-device.js";
import { exportReadOnly } from "./read-only-export.js";
import { activateVolumeGroups, type LogicalVolume } from "./volume-groups.js";

export interface AttachOptions {
  readonly journal: GuestJournal;
  /** Loop devices read-only: nothing can write the image (inspection). */
  readonly readOnly: boolean;
  /**
   * Work on a raw image itself rather than a copy. Other formats always go through a raw working copy, which
   * `commit` converts back.
   */
  readonly inPlace?: boolean;
  /** Folder for the raw working copy (default: beside the image). */
  readonly workDir?: string;
  readonly format?: string;
  readonly references?: ReferencePolicy;
  readonly signal?: AbortSignal;
}

/** A block device of the guest: a partition (or the whole disk when it has no table) or an LVM volume. */
export interface GuestBlockDevice {
  readonly device: string;
  readonly partition?: Partition;
  readonly logicalVolume?: LogicalVolume;
}

export interface AttachedImage {
  readonly image: string;
  readonly format: string;
  /** The raw file the loop devices are over: the image itself, or the working copy. */
  readonly rawPath: string;
  readonly table: PartitionTable | null;
  readonly devices: readonly GuestBlockDevice[];
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortedError();
}

/**
 * Makes an image's partitions available as block devices. A raw image is used in place when asked (or when
 * read-only, since nothing can change it); another format read-only is shown as a raw file by a read-only
 * qemu-storage-daemon export (no copy); otherwise it is converted to a sparse raw working copy, which costs
 * only the allocated data in temporary space. Everything made is in the journal, so the caller undoes it with
 * `journal.undoAll()` on every exit path.
 */
export async function attachImage(image: string, options: AttachOptions): Promise<AttachedImage> {
  const { journal, signal } = options;
  const recognised = await recogniseInput(image, { format: options.format });
  if (recognised.kind === "appliance") {
    if (typeof recognised.ova !== "string") await recognised.ova.close();
    throw new UsageError(
      `${image} is an OVA (an appliance), not a disk image: convert one of its disks first ` +
        `(chromogenic convert --disk N -O raw ${image} disk.raw)`,
    );
  }
  const { driver, source } = await openImage(recognised.input, {
    format: options.format,
    references: options.references,
  });
  let table: PartitionTable | null;
  let virtualSize: number;
  try {
    table = await readPartitionTable(source, image);
    virtualSize = source.virtualSize;
  } finally {
    await source.close();
  }
  checkAborted(signal);

  let rawPath = image;
  if (!driver.plainDisk && options.readOnly) {
    // Read-only access to a non-raw image needs no copy (and works on read-only storage): qemu shows its disk.
    rawPath = await exportReadOnly(journal, image, driver.name, join(stateDir(), "exports"));
  } else if (!driver.plainDisk || !(options.inPlace || options.readOnly)) {
    rawPath = join(options.workDir ?? join(image, ".."), `.${basename(image)}.chromogenic-work-${process.pid}.raw`);
    await journal.record({ kind: "file", path: rawPath });
    await convertFile({
      input: image,
      // The format just opened: the working copy holds what the partition table was read from.
      inputFormat: driver.name,
      output: rawPath,
      outputFormat: "raw",
      references: options.references,
      sync: false,
      signal,
    });
  }
  checkAborted(signal);

  const devices: GuestBlockDevice[] = [];
  if (!table) {
    devices.push({ device: await attachLoop(journal, rawPath, 0, virtualSize, options.readOnly) });
  } else {
    for (const partition of table.partitions) {
      if (partition.role === "swap" || partition.role === "bios-boot") continue;
      checkAborted(signal);
      devices.push({
        device: await attachLoop(journal, rawPath, partition.offset, partition.size, options.readOnly),
        partition,
      });
    }
  }
  checkAborted(signal);
  const lvmDevices = devices.filter((d) => d.partition?.role === "lvm").map((d) => d.device);
  for (const lv of await activateVolumeGroups(journal, lvmDevices, options.readOnly))
    devices.push({ device: lv.device, logicalVolume: lv });
  return { image, format: driver.name, rawPath, table, devices };
}

/**
 * Writes the working copy back as an image in the original format (or `format`), at `output`. Call after
 * the guest is unmounted and its devices detached, so the copy is consistent.
 */
export async function commitWorkingCopy(
  attached: AttachedImage,
  output: string,
  format = attached.format,
  options: {
    readonly signal?: AbortSignal;
    readonly onProgress?: ProgressListener;
    /** Records the output's temporary name before it is created (the journal), so `guest cleanup` removes it. */
    readonly recordTemporary?: (path: string) => Promise<void>;
  } = {},
): Promise<void> {
  if (attached.rawPath === attached.image && output === attached.image) return;
  await stat(attached.rawPath);
  const temporaryPath = TemporaryOutputFile.temporaryPathFor(output);
  await options.recordTemporary?.(temporaryPath);
  await convertFile({
    input: attached.rawPath,
    // The working copy is a raw disk, whatever its first bytes look like.
    inputFormat: "raw",
    output,
    temporaryPath,
    outputFormat: format,
    signal: options.signal,
    onProgress: options.onProgress,
  });
}
