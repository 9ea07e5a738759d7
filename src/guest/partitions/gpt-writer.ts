/**
 * Writes a GUID partition table (UEFI 2.10 §5.3): the protective MBR, the primary header and entry array at the
 * start of the disk, and the backup entry array and header at its end, both CRC-32'd. 128 entries of 128 bytes,
 * the size every tool writes, so the first usable sector is 34. The reader beside it (gpt.ts) reads back what
 * this writes, and so do sfdisk and the firmware.
 */
import { crc32 } from "node:zlib";
import { guidBytes } from "./guid.js";
import { MBR_MAX_SECTORS, writeMbrTable } from "./mbr-writer.js";

const SECTOR = 512;
const HEADER_SIZE = 92;
const ENTRY_COUNT = 128;
const ENTRY_SIZE = 128;
const ENTRY_SECTORS = (ENTRY_COUNT * ENTRY_SIZE) / SECTOR;
/** LBA 0 (protective MBR), LBA 1 (header), then the entries. */
export const GPT_FIRST_USABLE_LBA = 2 + ENTRY_SECTORS;
/** Sectors the backup (entries then header) takes at the disk's end. */
export const GPT_BACKUP_SECTORS = ENTRY_SECTORS + 1;
/** The "legacy BIOS bootable" attribute (bit 2), what a GPT-aware MBR boot code looks for. */
export const GPT_LEGACY_BIOS_BOOTABLE = 1n << 2n;

/** GPT partition types this project writes. */
export const GPT_TYPES = {
  linuxFilesystem: "0fc63daf-8483-4772-8e79-3d69d8477de4",
  biosBoot: "21686148-6449-6e6f-744e-656564454649",
} as const;

export interface GptPartitionSpec {
  /** Its slot, 1–128: what Linux numbers it (sdaN). */
  readonly number: number;
  readonly firstLba: number;
  /** Inclusive, as GPT stores it. */
  readonly lastLba: number;
  readonly type: string;
  readonly partUuid: string;
  readonly name?: string;
  readonly attributes?: bigint;
}

export interface GptLayout {
  /** LBA 0 through the end of the primary entry array: write at offset 0. */
  readonly head: Buffer;
  /** The backup entry array and header: write at `tailOffset`, the disk's last GPT_BACKUP_SECTORS sectors. */
  readonly tail: Buffer;
  readonly tailOffset: number;
}

function entryArray(partitions: readonly GptPartitionSpec[], firstUsable: number, lastUsable: number): Buffer {
  const bytes = Buffer.alloc(ENTRY_COUNT * ENTRY_SIZE);
  const slots = new Set<number>();
  for (const p of partitions) {
    if (!Number.isInteger(p.number) || p.number < 1 || p.number > ENTRY_COUNT || slots.has(p.number))
      throw new RangeError(`GPT partition number ${p.number} is outside 1–${ENTRY_COUNT} or given twice`);
    slots.add(p.number);
    if (p.firstLba < firstUsable || p.lastLba > lastUsable || p.lastLba < p.firstLba)
      throw new RangeError(
        `GPT partition ${p.number} (sectors ${p.firstLba}–${p.lastLba}) lies outside ${firstUsable}–${lastUsable}`,
      );
    const name = Buffer.from(p.name ?? "", "utf16le");
    if (name.length > 72) throw new RangeError(`GPT partition ${p.number}: name longer than 36 UTF-16 units`);
    const e = bytes.subarray((p.number - 1) * ENTRY_SIZE, p.number * ENTRY_SIZE);
    guidBytes(p.type).copy(e, 0);
    guidBytes(p.partUuid).copy(e, 16);
    e.writeBigUInt64LE(BigInt(p.firstLba), 32);
    e.writeBigUInt64LE(BigInt(p.lastLba), 40);
    e.writeBigUInt64LE(p.attributes ?? 0n, 48);
    name.copy(e, 56);
  }
  const sorted = [...partitions].sort((a, b) => a.firstLba - b.firstLba);
  for (let i = 1; i < sorted.length; i++)
    if (sorted[i]!.firstLba <= sorted[i - 1]!.lastLba)
      throw new RangeError(`GPT partitions ${sorted[i - 1]!.number} and ${sorted[i]!.number} overlap`);
  return bytes;
}

function header(fields: {
  current: number;
  backup: number;
  firstUsable: number;
  lastUsable: number;
  diskGuid: string;
  entriesLba: number;
  entriesCrc: number;
}): Buffer {
  const h = Buffer.alloc(SECTOR);
  h.write("EFI PART", 0, "latin1");
  h.writeUInt32LE(0x00010000, 8); // revision 1.0
  h.writeUInt32LE(HEADER_SIZE, 12);
  h.writeBigUInt64LE(BigInt(fields.current), 24);
  h.writeBigUInt64LE(BigInt(fields.backup), 32);
  h.writeBigUInt64LE(BigInt(fields.firstUsable), 40);
  h.writeBigUInt64LE(BigInt(fields.lastUsable), 48);
  guidBytes(fields.diskGuid).copy(h, 56);
  h.writeBigUInt64LE(BigInt(fields.entriesLba), 72);
  h.writeUInt32LE(ENTRY_COUNT, 80);
  h.writeUInt32LE(ENTRY_SIZE, 84);
  h.writeUInt32LE(fields.entriesCrc, 88);
  h.writeUInt32LE(crc32(h.subarray(0, HEADER_SIZE)), 16);
  return h;
}

/**
 * The GPT of a disk of `diskSectors` sectors. `bootCode` (up to 440 bytes) goes into the protective MBR, where
 * a BIOS starts executing; the protective entry covers the disk (or 2 TiB, the most an MBR can say).
 */
export function buildGpt(
  diskSectors: number,
  partitions: readonly GptPartitionSpec[],
  diskGuid: string,
  bootCode?: Buffer,
): GptLayout {
  const lastLba = diskSectors - 1;
  const firstUsable = GPT_FIRST_USABLE_LBA;
  const lastUsable = lastLba - GPT_BACKUP_SECTORS;
  if (!Number.isInteger(diskSectors) || lastUsable < firstUsable)
    throw new RangeError(`a disk of ${diskSectors} sectors is too small for a GPT`);
  const entries = entryArray(partitions, firstUsable, lastUsable);
  const entriesCrc = crc32(entries);
  const common = { firstUsable, lastUsable, diskGuid, entriesCrc };
  const primary = header({ ...common, current: 1, backup: lastLba, entriesLba: 2 });
  const backupEntriesLba = lastLba - ENTRY_SECTORS;
  const backup = header({ ...common, current: lastLba, backup: 1, entriesLba: backupEntriesLba });

  const mbr = Buffer.alloc(SECTOR);
  if (bootCode) {
    if (bootCode.length > 440) throw new RangeError(`boot code of ${bootCode.length} bytes does not fit before 440`);
    bootCode.copy(mbr, 0);
  }
  writeMbrTable(mbr, [{ startLba: 1, sectors: Math.min(lastLba, MBR_MAX_SECTORS), type: 0xee }], 0);
  // UEFI's protective entry starts at CHS 0/0/2 (LBA 1); its end is 0xFFFFFF, "not representable".
  mbr.set([0x00, 0x02, 0x00], 446 + 1);
  mbr.set([0xff, 0xff, 0xff], 446 + 5);

  return {
    head: Buffer.concat([mbr, primary, entries]),
    tail: Buffer.concat([entries, backup]),
    tailOffset: backupEntriesLba * SECTOR,
  };
}
