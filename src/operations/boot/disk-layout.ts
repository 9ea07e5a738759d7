/**
 * The new disk's layout, planned before anything is written (and all a dry run needs):
 * - a bare filesystem gets a new table — MBR by default, one bootable type-83 partition from 1 MiB to the end;
 *   GPT on request, the filesystem in partition 1 from 1 MiB and a BIOS boot partition (2) in the sectors
 *   before it, where GRUB's core image goes;
 * - a partitioned disk keeps its table: partitions keep their places, numbers, types and ids (so an fstab naming
 *   PARTUUID= still finds them), GRUB's core image goes into the gap before the first partition (MBR) or a BIOS
 *   boot partition (GPT: the disk's own, else one added in a free slot in that gap).
 * The disk is the input's size plus what the layout needs, or `size` when larger; the last partition grows
 * into what `size` adds when it holds a filesystem, and the copy of that filesystem grows with it later.
 */
import { UsageError } from "../../util/errors.js";
import { formatBytes } from "../../util/human.js";
import type { Partition, PartitionTable } from "../../guest/partitions/partition.js";
import {
  GPT_BACKUP_SECTORS,
  GPT_FIRST_USABLE_LBA,
  GPT_TYPES,
  type GptPartitionSpec,
} from "../../guest/partitions/gpt-writer.js";
import { MBR_MAX_SECTORS, readMbrSlots, type MbrPartitionSpec } from "../../guest/partitions/mbr-writer.js";
import { randomGuid } from "../../guest/partitions/guid.js";
import { NotBootableError } from "./boot-errors.js";

const SECTOR = 512;
const MiB = 2 ** 20;

export type TableKind = "mbr" | "gpt";

/** What the planner needs to know of the input. */
export interface InputDiskFacts {
  readonly where: string;
  readonly size: number;
  readonly table: PartitionTable | null;
  /** The input's first sector (its MBR, or a GPT's protective MBR). */
  readonly sector0: Buffer;
}

export interface LayoutOptions {
  readonly table?: TableKind;
  /** The disk's size in bytes; default: what the input and the layout need. */
  readonly size?: number;
  /** Sectors GRUB's core image takes: it must fit where it goes. */
  readonly coreSectors: number;
}

/** One partition of the new disk, in the terms the report and the later steps use. */
export interface PlannedPartition {
  readonly number: number;
  readonly offset: number;
  readonly size: number;
  readonly role: Partition["role"];
  /** Its size before the layout grew it (the filesystem inside is grown to match). */
  readonly grownFrom?: number;
}

/**
 * The boot loader, chosen per disk. GRUB wherever its core image has room (every new layout, every GPT): it reads
 * every filesystem here and LVM, finds its filesystem by UUID however the BIOS numbers the disk, and grub.cfg is
 * what Debian's and RHEL's own tools keep up to date when the guest later installs grub. extlinux where GRUB's
 * core has no room and the table is kept: an MBR disk whose first partition starts too early (the DOS-era
 * sector 63 with an LVM or btrfs /boot, or fewer sectors with anything), since extlinux needs no gap at all.
 */
export type BootLoaderKind = "grub" | "extlinux";

export interface DiskLayout {
  /** "new": a bare filesystem put into a new table; "kept": the input's own table kept. */
  readonly mode: "new" | "kept";
  readonly loader: BootLoaderKind;
  readonly table: TableKind;
  readonly diskSize: number;
  readonly partitions: readonly PlannedPartition[];
  /** Input bytes copied to the new disk: [from, from + length) lands at `to`. */
  readonly copies: readonly { readonly from: number; readonly to: number; readonly length: number }[];
  /** The MBR's slots (and signature) to write; for GPT, the partitions and disk GUID. */
  readonly mbr?: { readonly slots: readonly (MbrPartitionSpec | null)[]; readonly signature: number };
  readonly gpt?: { readonly partitions: readonly GptPartitionSpec[]; readonly diskGuid: string };
  /** Where GRUB's core image goes, and how many sectors are free there (for extlinux: the gap, unused). */
  readonly coreLba: number;
  readonly coreSectorsAvailable: number;
}

const alignUp = (n: number, to: number) => Math.ceil(n / to) * to;

function chosenSize(input: InputDiskFacts, needed: number, options: LayoutOptions, what: string): number {
  if (options.size === undefined) return needed;
  if (options.size < needed)
    throw new UsageError(
      `${input.where}: ${what} a disk of at least ${formatBytes(needed)} (${needed} bytes); ` +
        `--size ${formatBytes(options.size)} (${options.size} bytes) is too small`,
    );
  if (options.size % SECTOR !== 0) throw new UsageError(`--size ${options.size} is not a whole number of sectors`);
  return options.size;
}

function checkCoreFits(input: InputDiskFacts, available: number, options: LayoutOptions, where: string): void {
  if (options.coreSectors > available)
    throw new NotBootableError(
      `${input.where}: GRUB's core image (${options.coreSectors} sectors) does not fit ${where} ` +
        `(${available} sectors); the partitions would have to move`,
    );
}

/** A bare filesystem, put into a new table. */
function newLayout(input: InputDiskFacts, options: LayoutOptions): DiskLayout {
  const table = options.table ?? "mbr";
  const fsBytes = alignUp(input.size, SECTOR);
  const start = MiB;
  if (table === "mbr") {
    const size = chosenSize(input, alignUp(start + fsBytes, MiB), options, "its filesystem needs");
    const sectors = (size - start) / SECTOR;
    if (start / SECTOR + sectors - 1 > MBR_MAX_SECTORS)
      throw new UsageError(`a disk of ${formatBytes(size)} is past what an MBR describes (2 TiB): use --table gpt`);
    checkCoreFits(input, start / SECTOR - 1, options, "the gap before the partition");
    return {
      mode: "new",
      loader: "grub",
      table,
      diskSize: size,
      partitions: [{ number: 1, offset: start, size: size - start, role: "filesystem", grownFrom: fsBytes }],
      copies: [{ from: 0, to: start, length: input.size }],
      mbr: {
        slots: [{ startLba: start / SECTOR, sectors, type: 0x83, bootable: true }],
        signature: Math.floor(Math.random() * 0xffffffff) + 1,
      },
      coreLba: 1,
      coreSectorsAvailable: start / SECTOR - 1,
    };
  }
  const size = chosenSize(
    input,
    alignUp(start + fsBytes + GPT_BACKUP_SECTORS * SECTOR, MiB),
    options,
    "its filesystem needs",
  );
  const diskSectors = size / SECTOR;
  const lastUsable = diskSectors - 1 - GPT_BACKUP_SECTORS;
  const rootSize = (lastUsable + 1) * SECTOR - start;
  const biosBoot = { first: GPT_FIRST_USABLE_LBA, last: start / SECTOR - 1 };
  checkCoreFits(input, biosBoot.last - biosBoot.first + 1, options, "the BIOS boot partition");
  return {
    mode: "new",
    loader: "grub",
    table,
    diskSize: size,
    partitions: [
      { number: 1, offset: start, size: rootSize, role: "filesystem", grownFrom: fsBytes },
      {
        number: 2,
        offset: biosBoot.first * SECTOR,
        size: (biosBoot.last - biosBoot.first + 1) * SECTOR,
        role: "bios-boot",
      },
    ],
    copies: [{ from: 0, to: start, length: input.size }],
    gpt: {
      diskGuid: randomGuid(),
      partitions: [
        {
          number: 1,
          firstLba: start / SECTOR,
          lastLba: lastUsable,
          type: GPT_TYPES.linuxFilesystem,
          partUuid: randomGuid(),
          name: "root",
        },
        {
          number: 2,
          firstLba: biosBoot.first,
          lastLba: biosBoot.last,
          type: GPT_TYPES.biosBoot,
          partUuid: randomGuid(),
          name: "BIOS boot",
        },
      ],
    },
    coreLba: biosBoot.first,
    coreSectorsAvailable: biosBoot.last - biosBoot.first + 1,
  };
}

/** The partition that ends last, when it may grow into what a larger disk adds. */
function growable(table: PartitionTable): Partition | undefined {
  const last = [...table.partitions].sort((a, b) => a.offset + a.size - (b.offset + b.size)).at(-1);
  if (!last || last.role !== "filesystem") return undefined;
  // A logical partition sits inside its extended one, which would have to grow too.
  if (table.scheme === "mbr" && last.number > 4) return undefined;
  return last;
}

/** The input's partitions as the plan lists them, before any grows. */
function keptPartitions(table: PartitionTable): PlannedPartition[] {
  return table.partitions.map((p) => ({ number: p.number, offset: p.offset, size: p.size, role: p.role }));
}

function keptMbr(input: InputDiskFacts, table: PartitionTable, options: LayoutOptions): DiskLayout {
  const first = Math.min(...table.partitions.map((p) => p.offset));
  const gap = first / SECTOR - 1;
  const size = chosenSize(input, input.size, options, "its partitions need");
  const slots = readMbrSlots(input.sector0);
  const grow = size > input.size ? growable(table) : undefined;
  const partitions = keptPartitions(table);
  if (grow) {
    const slot = slots[grow.number - 1]!;
    const sectors = Math.min((size - grow.offset) / SECTOR, MBR_MAX_SECTORS - slot.startLba + 1);
    slots[grow.number - 1] = { ...slot, sectors };
    const i = partitions.findIndex((p) => p.number === grow.number);
    partitions[i] = { ...partitions[i]!, size: sectors * SECTOR, grownFrom: grow.size };
  }
  // Some BIOSes boot only a disk with an active partition: mark the first filesystem if none is.
  if (!slots.some((s) => s?.bootable)) {
    const i = slots.findIndex(
      (s, n) => s && table.partitions.some((p) => p.number === n + 1 && p.role === "filesystem"),
    );
    if (i >= 0) slots[i] = { ...slots[i]!, bootable: true };
  }
  return {
    mode: "kept",
    loader: options.coreSectors <= gap ? "grub" : "extlinux",
    table: "mbr",
    diskSize: size,
    partitions,
    copies: [{ from: 0, to: 0, length: input.size }],
    mbr: { slots, signature: input.sector0.readUInt32LE(440) },
    coreLba: 1,
    coreSectorsAvailable: gap,
  };
}

function keptGpt(input: InputDiskFacts, table: PartitionTable, options: LayoutOptions): DiskLayout {
  const size = chosenSize(input, input.size, options, "its partitions need");
  const diskSectors = size / SECTOR;
  const lastUsable = diskSectors - 1 - GPT_BACKUP_SECTORS;
  const grow = size > input.size ? growable(table) : undefined;
  const specs: GptPartitionSpec[] = table.partitions.map((p) => ({
    number: p.number,
    firstLba: p.offset / SECTOR,
    lastLba: (p.offset + p.size) / SECTOR - 1,
    type: p.type,
    partUuid: p.partUuid!,
    ...(p.name ? { name: p.name } : {}),
    ...(p.attributes ? { attributes: BigInt(`0x${p.attributes}`) } : {}),
  }));
  const partitions = keptPartitions(table);
  if (grow) {
    const i = specs.findIndex((s) => s.number === grow.number);
    specs[i] = { ...specs[i]!, lastLba: lastUsable };
    partitions[i] = { ...partitions[i]!, size: (lastUsable + 1) * SECTOR - grow.offset, grownFrom: grow.size };
  }
  let biosBoot = table.partitions.find((p) => p.role === "bios-boot");
  if (!biosBoot) {
    const first = Math.min(...table.partitions.map((p) => p.offset)) / SECTOR;
    const number = [...Array(128).keys()].map((n) => n + 1).find((n) => !specs.some((s) => s.number === n));
    const gap = first - GPT_FIRST_USABLE_LBA;
    if (number === undefined) throw new NotBootableError(`${input.where}: no free GPT entry for a BIOS boot partition`);
    checkCoreFits(input, gap, options, `the gap before the first partition (it starts at sector ${first})`);
    const spec: GptPartitionSpec = {
      number,
      firstLba: GPT_FIRST_USABLE_LBA,
      lastLba: first - 1,
      type: GPT_TYPES.biosBoot,
      partUuid: randomGuid(),
      name: "BIOS boot",
    };
    specs.push(spec);
    biosBoot = {
      number,
      offset: spec.firstLba * SECTOR,
      size: gap * SECTOR,
      type: spec.type,
      partUuid: spec.partUuid,
      role: "bios-boot",
    };
    partitions.push({ number, offset: biosBoot.offset, size: biosBoot.size, role: "bios-boot" });
  } else checkCoreFits(input, biosBoot.size / SECTOR, options, "the disk's BIOS boot partition");
  // The input's backup GPT (its last sectors) is not copied: the new one is written at the new end.
  const dataEnd = Math.max(...table.partitions.map((p) => p.offset + p.size));
  return {
    mode: "kept",
    loader: "grub",
    table: "gpt",
    diskSize: size,
    partitions,
    copies: [{ from: 0, to: 0, length: dataEnd }],
    gpt: { partitions: specs, diskGuid: table.diskId },
    coreLba: biosBoot.offset / SECTOR,
    coreSectorsAvailable: biosBoot.size / SECTOR,
  };
}

export function planLayout(input: InputDiskFacts, options: LayoutOptions): DiskLayout {
  const { table } = input;
  if (!table) return newLayout(input, options);
  if (options.table && options.table !== table.scheme)
    throw new UsageError(
      `${input.where} has a ${table.scheme.toUpperCase()} partition table, which is kept (its partitions keep ` +
        `their places and ids); --table ${options.table} applies to a bare filesystem`,
    );
  if (table.partitions.length === 0) throw new NotBootableError(`${input.where}: its partition table is empty`);
  return table.scheme === "mbr" ? keptMbr(input, table, options) : keptGpt(input, table, options);
}
