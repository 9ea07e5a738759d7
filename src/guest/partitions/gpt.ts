import { crc32 } from "node:zlib";
import { CorruptImageError } from "../../formats/errors.js";
import type { ImageSource } from "../../formats/types.js";
import { formatGuid } from "./guid.js";
import type { Partition, PartitionTable } from "./partition.js";
import { checkPartitionLayout } from "./table-checks.js";

const SECTOR = 512;
const SIGNATURE = "EFI PART";
/** The UEFI minimum is 128 entries of 128 bytes; anything needing more than 1 MiB of entries is refused. */
export const MAX_GPT_ENTRY_BYTES = 1024 * 1024;

const ROLES: Readonly<Record<string, Partition["role"]>> = {
  "0fc63daf-8483-4772-8e79-3d69d8477de4": "filesystem", // Linux filesystem
  "4f68bce3-e8cd-4db1-96e7-fbcaf984b709": "filesystem", // Linux root (x86-64)
  "bc13c2ff-59e6-4262-a352-b275fd6f7172": "filesystem", // extended boot loader (/boot)
  "933ac7e1-2eb4-4f13-b844-0e14e2aef915": "filesystem", // Linux /home
  "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7": "filesystem", // basic data
  "e6d6d379-f507-44c2-a23c-238f2a3df928": "lvm",
  "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f": "swap",
  "c12a7328-f81f-11d2-ba4b-00a0c93ec93b": "efi",
  "21686148-6449-6e6f-744e-656564454649": "bios-boot",
};

interface GptHeader {
  readonly currentLba: number;
  readonly backupLba: number;
  readonly firstUsableLba: number;
  readonly lastUsableLba: number;
  readonly diskGuid: string;
  readonly entriesLba: number;
  readonly entryCount: number;
  readonly entrySize: number;
  readonly entriesCrc: number;
}

export function hasGptSignature(sector: Buffer): boolean {
  return sector.length >= 8 && sector.toString("latin1", 0, 8) === SIGNATURE;
}

/** Validates one header sector: signature, size, CRC and that it describes itself at `expectedLba`. */
function parseHeader(sector: Buffer, expectedLba: number, diskSectors: number): GptHeader | string {
  if (!hasGptSignature(sector)) return "no signature";
  const headerSize = sector.readUInt32LE(12);
  if (headerSize < 92 || headerSize > SECTOR) return `header size ${headerSize}`;
  const copy = Buffer.from(sector.subarray(0, headerSize));
  const stored = copy.readUInt32LE(16);
  copy.writeUInt32LE(0, 16);
  if (crc32(copy) !== stored) return "header CRC mismatch";
  const n = (at: number) => Number(sector.readBigUInt64LE(at));
  const header: GptHeader = {
    currentLba: n(24),
    backupLba: n(32),
    firstUsableLba: n(40),
    lastUsableLba: n(48),
    diskGuid: formatGuid(sector.subarray(56, 72)),
    entriesLba: n(72),
    entryCount: sector.readUInt32LE(80),
    entrySize: sector.readUInt32LE(84),
    entriesCrc: sector.readUInt32LE(88),
  };
  if (header.currentLba !== expectedLba) return `header says it is at LBA ${header.currentLba}`;
  if (header.entrySize < 128 || header.entrySize % 8 !== 0) return `entry size ${header.entrySize}`;
  if (header.entryCount * header.entrySize > MAX_GPT_ENTRY_BYTES)
    return `${header.entryCount} entries of ${header.entrySize} bytes (more than ${MAX_GPT_ENTRY_BYTES} bytes)`;
  const entrySectors = Math.ceil((header.entryCount * header.entrySize) / SECTOR);
  if (header.entriesLba < 1 || header.entriesLba + entrySectors > diskSectors) return "entries lie beyond the disk";
  if (header.firstUsableLba > header.lastUsableLba || header.lastUsableLba >= diskSectors)
    return "usable range lies beyond the disk";
  return header;
}

/**
 * Parses a GPT: the primary header at LBA 1 and its entry array, both CRC-checked; if either is damaged the
 * backup header at the last LBA (and its own entry array) is used instead, as firmware does.
 */
export async function parseGpt(source: ImageSource, where: string): Promise<PartitionTable> {
  const diskSectors = Math.floor(source.virtualSize / SECTOR);
  if (diskSectors < 3) throw new CorruptImageError(`${where}: too small for a GPT`);
  const problems: string[] = [];
  const attempts: Array<{ lba: number; label: string }> = [
    { lba: 1, label: "primary" },
    { lba: diskSectors - 1, label: "backup" },
  ];
  for (const { lba, label } of attempts) {
    const header = parseHeader(await source.read(lba * SECTOR, SECTOR), lba, diskSectors);
    if (typeof header === "string") {
      problems.push(`${label} GPT header: ${header}`);
      continue;
    }
    const entryBytes = await source.read(header.entriesLba * SECTOR, header.entryCount * header.entrySize);
    if (crc32(entryBytes) !== header.entriesCrc) {
      problems.push(`${label} GPT entries: CRC mismatch`);
      continue;
    }
    const partitions = gptEntries(entryBytes, header);
    for (const p of partitions)
      if (p.offset + p.size > (header.lastUsableLba + 1) * SECTOR)
        throw new CorruptImageError(`${where}: partition ${p.number} ends beyond the last usable sector`);
    checkPartitionLayout(where, partitions, source.virtualSize, header.firstUsableLba * SECTOR);
    return {
      scheme: "gpt",
      sectorSize: SECTOR,
      diskId: header.diskGuid,
      partitions,
      ...(label === "backup" ? { usedBackupGpt: true } : {}),
    };
  }
  throw new CorruptImageError(`${where}: no valid GPT (${problems.join("; ")})`);
}

function gptEntries(bytes: Buffer, header: GptHeader): Partition[] {
  const out: Partition[] = [];
  for (let i = 0; i < header.entryCount; i++) {
    const e = bytes.subarray(i * header.entrySize, (i + 1) * header.entrySize);
    const type = formatGuid(e.subarray(0, 16));
    if (type === "00000000-0000-0000-0000-000000000000") continue;
    const first = Number(e.readBigUInt64LE(32));
    const last = Number(e.readBigUInt64LE(40));
    const name = e.subarray(56, 128).toString("utf16le").replace(/\0.*$/s, "");
    const attributes = e.readBigUInt64LE(48);
    out.push({
      number: i + 1,
      offset: first * SECTOR,
      size: last >= first ? (last - first + 1) * SECTOR : 0,
      type,
      partUuid: formatGuid(e.subarray(16, 32)),
      ...(name ? { name } : {}),
      ...(attributes ? { attributes: attributes.toString(16).padStart(16, "0") } : {}),
      role: ROLES[type] ?? "other",
    });
  }
  return out;
}
