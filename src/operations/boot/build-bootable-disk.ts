/**
 * Builds the bootable disk in a raw working file: the layout's table, the input's filesystems copied in through
 * the engine, each partition attached (by offset: no partition devices are needed), the guest mounted
 * read-write and its filesystem grown, the guest edits, GRUB's files and grub.cfg, then — once everything is
 * unmounted and detached — boot.img and the core image written into the disk's first sectors. Every loop device
 * and mount is in the caller's journal, undone on every exit path; nothing of the host's own is written.
 */
import { open, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { ImageSource } from "../../formats/types.js";
import { readAt, writeAt, closeHandle } from "../../formats/io/positional-io.js";
import { openImage } from "../../formats/engine/open-image.js";
import type { AttachedImage, GuestBlockDevice } from "../../guest/attach/attach-image.js";
import { attachLoop } from "../../guest/attach/loop-device.js";
import { activateVolumeGroups } from "../../guest/attach/volume-groups.js";
import { resolveGuestPath } from "../../guest/guest-path.js";
import type { GuestJournal } from "../../guest/journal/guest-journal.js";
import { mountGuest } from "../../guest/mount/mount-guest.js";
import { probeFilesystem } from "../../guest/mount/filesystem-probe.js";
import { buildGpt } from "../../guest/partitions/gpt-writer.js";
import { writeMbrTable } from "../../guest/partitions/mbr-writer.js";
import { readPartitionTable } from "../../guest/partitions/read-partition-table.js";
import { AbortedError } from "../../util/errors.js";
import type { WorkListener } from "../../util/events.js";
import { NotBootableError } from "./boot-errors.js";
import { planBootLoader, type BootLoaderPlan } from "./boot-loader-plan.js";
import type { BootableReport } from "./bootable-report.js";
import { copyRanges } from "./copy-ranges.js";
import type { DiskLayout } from "./disk-layout.js";
import { grubBootSector, placedCoreImage } from "./grub-boot-sectors.js";
import { buildCoreImage, coreImageModules, GRUB_I386_PC_DIR } from "./grub-core-image.js";
import { runGuestEdits, type GuestEditChange, type GuestEdits } from "./guest-edits.js";
import { growMounted, growOffline, growsOffline } from "./grow-filesystem.js";
import { installLoaderFiles } from "./install-loader-files.js";
import { extlinuxBootSector } from "./extlinux.js";

const SECTOR = 512;

export interface BuildBootableDiskRequest {
  readonly source: ImageSource;
  readonly layout: DiskLayout;
  /** The working file to build; the caller has journaled it and removes it. */
  readonly workRaw: string;
  readonly journal: GuestJournal;
  /** Folder the guest is mounted under (mode 0700). */
  readonly mountBase: string;
  readonly guestEdits?: GuestEdits;
  readonly signal?: AbortSignal;
  readonly onEvent?: WorkListener;
}

export type BuiltDisk = Pick<BootableReport, "loader" | "filesystems" | "kernel" | "changes" | "warnings">;

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortedError();
}

/** Creates the working file, copies the input's bytes in and writes the layout's partition table. */
async function writeDisk(request: BuildBootableDiskRequest): Promise<void> {
  const { layout } = request;
  const handle = await open(request.workRaw, "wx", 0o600);
  try {
    await handle.truncate(layout.diskSize);
    await copyRanges(request.source, handle, layout.copies, { signal: request.signal, onProgress: request.onEvent });
    if (layout.mbr) {
      const sector0 = Buffer.alloc(SECTOR);
      writeMbrTable(sector0, layout.mbr.slots, layout.mbr.signature);
      await writeAt(handle, sector0, 0);
    } else if (layout.gpt) {
      const gpt = buildGpt(layout.diskSize / SECTOR, layout.gpt.partitions, layout.gpt.diskGuid);
      await writeAt(handle, gpt.head, 0);
      await writeAt(handle, gpt.tail, gpt.tailOffset);
    }
  } finally {
    await closeHandle(handle);
  }
}

/** The new disk's partitions on loop devices, its table read back with our own reader (which checks it). */
async function attachDisk(request: BuildBootableDiskRequest): Promise<AttachedImage> {
  const { journal, workRaw } = request;
  const { source } = await openImage(workRaw, { format: "raw" });
  const table = await readPartitionTable(source, workRaw).finally(() => source.close());
  if (!table) throw new Error(`${workRaw}: the partition table just written does not read back`);
  const devices: GuestBlockDevice[] = [];
  for (const partition of table.partitions) {
    if (partition.role === "swap" || partition.role === "bios-boot") continue;
    checkAborted(request.signal);
    devices.push({ device: await attachLoop(journal, workRaw, partition.offset, partition.size, false), partition });
  }
  const lvmDevices = devices.filter((d) => d.partition?.role === "lvm").map((d) => d.device);
  for (const lv of await activateVolumeGroups(journal, lvmDevices, false))
    devices.push({ device: lv.device, logicalVolume: lv });
  return { image: workRaw, format: "raw", rawPath: workRaw, table, devices };
}

/** Writes boot.img into sector 0 (table kept) and the core image where the layout keeps room for it. */
async function writeGrubBootCode(workRaw: string, layout: DiskLayout, core: Buffer): Promise<void> {
  const placed = placedCoreImage(core, layout.coreLba);
  if (placed.length / SECTOR > layout.coreSectorsAvailable)
    throw new NotBootableError(
      `GRUB's core image (${placed.length / SECTOR} sectors) does not fit the ${layout.coreSectorsAvailable} ` +
        "sectors the layout keeps for it",
    );
  const bootImage = await readFile(join(GRUB_I386_PC_DIR, "boot.img"));
  await editDisk(workRaw, async (sector0) => {
    return {
      sector0: grubBootSector(bootImage, sector0, layout.coreLba),
      more: { at: layout.coreLba * SECTOR, data: placed },
    };
  });
}

/** Writes syslinux's MBR code into sector 0, the boot filesystem's partition the active one. */
async function writeExtlinuxBootCode(workRaw: string, layout: DiskLayout, bootPartition: number): Promise<void> {
  const slots = layout.mbr!.slots.map((s, i) => s && { ...s, bootable: i + 1 === bootPartition });
  await editDisk(workRaw, async (sector0) => {
    writeMbrTable(sector0, slots, layout.mbr!.signature);
    return { sector0: await extlinuxBootSector(sector0) };
  });
}

/** Reads sector 0, writes back what `edit` makes of it (and any more bytes it gives), synced. */
async function editDisk(
  workRaw: string,
  edit: (sector0: Buffer) => Promise<{ sector0: Buffer; more?: { at: number; data: Buffer } }>,
): Promise<void> {
  const handle = await open(workRaw, "r+");
  try {
    const sector0 = Buffer.alloc(SECTOR);
    await readAt(handle, sector0, SECTOR, 0);
    const edited = await edit(sector0);
    await writeAt(handle, edited.sector0, 0);
    if (edited.more) await writeAt(handle, edited.more.data, edited.more.at);
    await handle.datasync();
  } finally {
    await closeHandle(handle);
  }
}

/** Undoes every mount, LVM activation and loop device of the journal, keeping its files (the working disk). */
async function detachAll(journal: GuestJournal): Promise<void> {
  for (const entry of [...journal.pending].reverse()) if (entry.action.kind !== "file") await journal.undo(entry.id);
}

export async function buildBootableDisk(request: BuildBootableDiskRequest): Promise<BuiltDisk> {
  const { layout, journal, signal, onEvent } = request;
  onEvent?.({ event: "phase", phase: "copy", state: "start", detail: `${layout.copies.length} range(s)` });
  await writeDisk(request);
  onEvent?.({ event: "phase", phase: "copy", state: "end" });
  checkAborted(signal);

  onEvent?.({ event: "phase", phase: "attach", state: "start", detail: request.workRaw });
  const attached = await attachDisk(request);
  const grown: { partition: number; type: string; from: number; to: number }[] = [];
  const warnings: string[] = [];
  const toGrow = layout.partitions.filter((p) => p.grownFrom !== undefined && p.grownFrom !== p.size);
  for (const planned of toGrow) {
    const device = attached.devices.find((d) => d.partition?.number === planned.number);
    const type = device && (await probeFilesystem(device.device))?.type;
    if (!device || !type || !growsOffline(type)) continue;
    await growOffline(device.device);
    grown.push({ partition: planned.number, type, from: planned.grownFrom!, to: planned.size });
  }
  checkAborted(signal);
  const mounted = await mountGuest(attached, { journal, readOnly: false, mountBase: request.mountBase, signal });
  onEvent?.({ event: "phase", phase: "attach", state: "end" });
  checkAborted(signal);

  onEvent?.({ event: "phase", phase: "boot", state: "start" });
  for (const planned of toGrow) {
    if (grown.some((g) => g.partition === planned.number)) continue;
    const device = mounted.devices.find((d) => d.partition?.number === planned.number);
    const type = device?.filesystem?.type;
    if (!device || !type) continue;
    const mount = mounted.mounts.find((m) => m.device === device.device);
    if (mount && (await growMounted(type, await resolveGuestPath(mounted.root, mount.guestPath))))
      grown.push({ partition: planned.number, type, from: planned.grownFrom!, to: planned.size });
    else warnings.push(`partition ${planned.number} grew, but its ${type} filesystem was not: it is not mounted`);
  }
  checkAborted(signal);

  const edits = await runGuestEdits(request.guestEdits, mounted, false, signal);
  checkAborted(signal);
  const plan = await planBootLoader(mounted, layout, edits);
  const changes: GuestEditChange[] = [
    ...(edits?.changes ?? []),
    ...(await installLoaderFiles(mounted.root, plan, false)),
  ];
  const core = plan.loader === "grub" ? await buildCoreImage(plan.core) : undefined;
  await detachAll(journal);
  if (core) await writeGrubBootCode(request.workRaw, layout, core);
  else await writeExtlinuxBootCode(request.workRaw, layout, plan.boot.partition!);
  onEvent?.({ event: "phase", phase: "boot", state: "end", detail: `${plan.loader}, kernel ${plan.kernel.version}` });
  const described = describePlan(plan, layout, core?.length);
  return {
    ...described,
    filesystems: { ...described.filesystems, grown },
    changes,
    warnings: [...warnings, ...plan.warnings, ...(edits?.warnings ?? [])],
  };
}

/** The report's view of a boot loader plan. */
export function describePlan(
  plan: BootLoaderPlan,
  layout: DiskLayout,
  coreBytes: number | undefined,
): Required<Pick<BuiltDisk, "loader" | "filesystems" | "kernel">> {
  return {
    loader: {
      name: plan.loader,
      config: plan.configPath,
      ...(plan.loader === "grub" && coreBytes !== undefined
        ? { coreLba: layout.coreLba, coreBytes, modules: coreImageModules(plan.core), prefix: plan.core.prefix }
        : {}),
    },
    filesystems: {
      root: { type: plan.root.type, uuid: plan.root.uuid },
      ...(plan.boot.separate ? { boot: { type: plan.boot.type, uuid: plan.boot.uuid } } : {}),
      grown: [],
    },
    kernel: {
      version: plan.kernel.version,
      kernel: plan.kernel.kernel,
      initramfs: plan.kernel.initramfs,
      arguments: plan.kernelArguments,
    },
  };
}
