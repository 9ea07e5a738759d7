import { CorruptImageError } from "../../formats/errors.js";
import type { ImageSource } from "../../formats/types.js";
import type { Partition, PartitionTable } from "./partition.js";
import { checkPartitionLayout } from "./table-checks.js";

const SECTOR = 512;
/** Linux itself stops at a few hundred logical partitions; a longer chain is a hostile or broken table. */
export const MAX_LOGICAL_PARTITIONS = 256;
const EXTENDED_TYPES = new Set([0x05, 0x0f, 0x85]);

interface RawEntry {
  readonly type: number;
  readonly startLba: number;
  readonly sectors: number;
}

function entries(sector: Buffer): RawEntry[] {
  const out: RawEntry[] = [];
  for (let i = 0; i < 4; i++) {
    const at = 446 + i * 16;
    out.push({ type: sector[at + 4]!, startLba: sector.readUInt32LE(at + 8), sectors: sector.readUInt32LE(at + 12) });
  }
  return out;
}

export function hasMbrSignature(sector0: Buffer): boolean {
  return sector0.length >= 512 && sector0.readUInt16LE(510) === 0xaa55;
}

function roleOf(type: number): Partition["role"] {
  if (type === 0x8e) return "lvm";
  if (type === 0x82) return "swap";
  if (type === 0xef) return "efi";
  if (type === 0x83 || type === 0x07 || type === 0x0b || type === 0x0c || type === 0x06) return "filesystem";
  return "other";
}

/**
 * Parses an MBR and its chain of extended boot records. The chain is followed with a visited set and a
 * length cap, and every link must stay inside the extended partition, so a looping or runaway chain is
 * refused instead of hanging the process.
 */
export async function parseMbr(source: ImageSource, sector0: Buffer, where: string): Promise<PartitionTable> {
  if (!hasMbrSignature(sector0)) throw new CorruptImageError(`${where}: no MBR signature`);
  const diskId = sector0.readUInt32LE(440).toString(16).padStart(8, "0");
  const partitions: Partition[] = [];
  let extended: RawEntry | undefined;
  const primaries = entries(sector0);
  for (const [i, e] of primaries.entries()) {
    if (e.type === 0 || e.sectors === 0) continue;
    if (EXTENDED_TYPES.has(e.type)) {
      if (extended) throw new CorruptImageError(`${where}: more than one extended partition`);
      extended = e;
      continue;
    }
    partitions.push(mbrPartition(i + 1, e, 0, diskId));
  }
  if (extended) {
    const extStart = extended.startLba * SECTOR;
    const extEnd = extStart + extended.sectors * SECTOR;
    if (extEnd > source.virtualSize)
      throw new CorruptImageError(`${where}: the extended partition ends beyond the disk`);
    partitions.push(...(await logicalPartitions(source, extended.startLba, extStart, extEnd, diskId, where)));
  }
  checkPartitionLayout(where, partitions, source.virtualSize, SECTOR);
  return { scheme: "mbr", sectorSize: SECTOR, diskId, partitions };
}

async function logicalPartitions(
  source: ImageSource,
  extStartLba: number,
  extStart: number,
  extEnd: number,
  diskId: string,
  where: string,
): Promise<Partition[]> {
  const out: Partition[] = [];
  const visited = new Set<number>();
  let ebrLba = extStartLba;
  for (;;) {
    if (visited.has(ebrLba)) throw new CorruptImageError(`${where}: the extended partition chain loops`);
    if (visited.size >= MAX_LOGICAL_PARTITIONS)
      throw new CorruptImageError(`${where}: more than ${MAX_LOGICAL_PARTITIONS} logical partitions`);
    visited.add(ebrLba);
    const ebrOffset = ebrLba * SECTOR;
    if (ebrOffset < extStart || ebrOffset + SECTOR > extEnd)
      throw new CorruptImageError(`${where}: an extended boot record lies outside the extended partition`);
    const ebr = await source.read(ebrOffset, SECTOR);
    if (!hasMbrSignature(ebr))
      throw new CorruptImageError(`${where}: extended boot record at byte ${ebrOffset} has no signature`);
    const [logical, next] = entries(ebr) as [RawEntry, RawEntry];
    if (logical.type !== 0 && logical.sectors !== 0) {
      const p = mbrPartition(5 + out.length, logical, ebrLba, diskId);
      if (p.offset < extStart || p.offset + p.size > extEnd)
        throw new CorruptImageError(`${where}: logical partition ${p.number} lies outside the extended partition`);
      out.push(p);
    }
    if (next.type === 0 || next.startLba === 0) return out;
    ebrLba = extStartLba + next.startLba;
  }
}

function mbrPartition(number: number, e: RawEntry, baseLba: number, diskId: string): Partition {
  return {
    number,
    offset: (baseLba + e.startLba) * SECTOR,
    size: e.sectors * SECTOR,
    type: `0x${e.type.toString(16).padStart(2, "0")}`,
    partUuid: `${diskId}-${number.toString(16).padStart(2, "0")}`,
    role: roleOf(e.type),
  };
}
