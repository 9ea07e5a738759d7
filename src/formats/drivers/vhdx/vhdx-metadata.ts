/**
 * The VHDX metadata region ([MS-VHDX] 2.6): a 64 KiB table of (GUID, offset, length, flags) entries at the
 * region's start, pointing at items inside the region. The system items the disk cannot be read without are the
 * file parameters (block size, leave-blocks-allocated, has-parent), the virtual disk size, the disk's id and its
 * logical and physical sector sizes. An unknown item marked required makes the file unreadable by definition.
 */
import { CorruptImageError, UnsupportedFeatureError } from "../../errors.js";
import type { ImageInput } from "../../inputs/image-input.js";
import { LIMITS, checkRange } from "../../limits.js";
import type { VhdxRegion } from "./vhdx-header-section.js";
import { formatGuid, guidBytes } from "./vhdx-guid.js";

const KiB = 1024;
const MiB = 1024 * KiB;
const TABLE_SIZE = 64 * KiB;
const MAX_ENTRIES = 2047;

const ITEMS = {
  fileParameters: guidBytes("CAA16737-FA36-4D43-B3B6-33F0AA44E76B"),
  virtualDiskSize: guidBytes("2FA54224-CD1B-4876-B211-5DBED83BF4B8"),
  virtualDiskId: guidBytes("BECA12AB-B2E6-4523-93EF-C309E000C746"),
  logicalSectorSize: guidBytes("8141BF1D-A96F-4709-BA47-F233A8FAAB5F"),
  physicalSectorSize: guidBytes("CDA348C7-445D-4471-9CC9-E9885251C556"),
  parentLocator: guidBytes("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C"),
} as const;
type ItemName = keyof typeof ITEMS;

export interface VhdxMetadata {
  readonly blockSize: number;
  /** Set in fixed VHDX files: every block stays allocated. */
  readonly leaveBlocksAllocated: boolean;
  readonly virtualSize: number;
  readonly virtualDiskId: string;
  readonly logicalSectorSize: number;
  readonly physicalSectorSize: number;
}

export async function readVhdxMetadata(file: ImageInput, region: VhdxRegion): Promise<VhdxMetadata> {
  const path = file.path;
  const table = await file.readExact(region.fileOffset, TABLE_SIZE, undefined, "VHDX metadata table");
  if (table.toString("latin1", 0, 8) !== "metadata") {
    throw new CorruptImageError(`${path}: VHDX metadata region has no "metadata" signature`);
  }
  const count = table.readUInt16LE(10);
  if (count > MAX_ENTRIES) {
    throw new CorruptImageError(`${path}: VHDX metadata table claims ${count} entries (at most ${MAX_ENTRIES})`);
  }
  const found = new Map<ItemName, { offset: number; length: number }>();
  for (let i = 0; i < count; i++) {
    const entry = table.subarray(32 + 32 * i, 64 + 32 * i);
    const id = entry.subarray(0, 16);
    const offset = entry.readUInt32LE(16);
    const length = entry.readUInt32LE(20);
    const flags = entry.readUInt32LE(24);
    const isUser = (flags & 1) === 1;
    const isRequired = (flags & 4) === 4;
    const name = isUser ? undefined : (Object.keys(ITEMS) as ItemName[]).find((k) => ITEMS[k].equals(id));
    if (!name) {
      if (isRequired) {
        throw new UnsupportedFeatureError(
          `${path}: VHDX has a required metadata item ${formatGuid(id)} that chromogenic does not know`,
        );
      }
      continue;
    }
    if (found.has(name)) throw new CorruptImageError(`${path}: VHDX metadata item ${name} is listed twice`);
    if (length > MiB || (length > 0 && (offset < TABLE_SIZE || offset + length > region.length))) {
      throw new CorruptImageError(
        `${path}: VHDX metadata item ${name} at ${offset} (+${length} bytes) lies outside its region (${region.length} bytes)`,
      );
    }
    found.set(name, { offset, length });
  }

  const item = async (name: ItemName, minLength: number): Promise<Buffer> => {
    const where = found.get(name);
    if (!where) throw new CorruptImageError(`${path}: VHDX metadata lacks the required item ${name}`);
    if (where.length < minLength) {
      throw new CorruptImageError(
        `${path}: VHDX metadata item ${name} is ${where.length} bytes, expected ${minLength}`,
      );
    }
    return file.readExact(region.fileOffset + where.offset, minLength, undefined, `VHDX metadata item ${name}`);
  };

  const params = await item("fileParameters", 8);
  const blockSize = params.readUInt32LE(0);
  if (blockSize < MiB || blockSize > 256 * MiB || (blockSize & (blockSize - 1)) !== 0) {
    throw new CorruptImageError(`${path}: VHDX block size ${blockSize} is not a power of two from 1 MiB to 256 MiB`);
  }
  const paramFlags = params.readUInt32LE(4);
  if ((paramFlags & 2) !== 0) {
    const parent = found.has("parentLocator") ? await parentPath(file, region, found.get("parentLocator")!) : "";
    throw new UnsupportedFeatureError(
      `${path}: differencing VHDX${parent ? ` over parent "${parent}"` : ""} is not supported: it names another ` +
        `file, and chains are not merged. Merge it into its parent first (Hyper-V "Edit Disk" → Merge, or ` +
        `Merge-VHD in PowerShell), then convert the parent`,
    );
  }
  const logicalSectorSize = (await item("logicalSectorSize", 4)).readUInt32LE(0);
  const physicalSectorSize = (await item("physicalSectorSize", 4)).readUInt32LE(0);
  for (const [what, value] of [
    ["logical", logicalSectorSize],
    ["physical", physicalSectorSize],
  ] as const) {
    if (value !== 512 && value !== 4096) {
      throw new CorruptImageError(`${path}: VHDX ${what} sector size ${value} is neither 512 nor 4096`);
    }
  }
  const virtualSize = checkRange(
    path,
    "VHDX virtual disk size",
    (await item("virtualDiskSize", 8)).readBigUInt64LE(0),
    0,
    LIMITS.maxVirtualSize,
  );
  if (virtualSize % logicalSectorSize !== 0) {
    throw new CorruptImageError(
      `${path}: VHDX virtual disk size ${virtualSize} is not a multiple of the ${logicalSectorSize}-byte sector`,
    );
  }
  return {
    blockSize,
    leaveBlocksAllocated: (paramFlags & 1) === 1,
    virtualSize,
    virtualDiskId: formatGuid(await item("virtualDiskId", 16)),
    logicalSectorSize,
    physicalSectorSize,
  };
}

/**
 * The parent's path from a parent locator, for the refusal message only: the first of relative_path,
 * absolute_win32_path and volume_path found. Best effort: anything malformed yields "".
 */
async function parentPath(
  file: ImageInput,
  region: VhdxRegion,
  where: { offset: number; length: number },
): Promise<string> {
  if (where.length < 20) return "";
  const locator = await file.readExact(
    region.fileOffset + where.offset,
    where.length,
    undefined,
    "VHDX parent locator",
  );
  const count = locator.readUInt16LE(18);
  const values = new Map<string, string>();
  for (let i = 0; i < count && 20 + 12 * (i + 1) <= locator.length; i++) {
    const e = locator.subarray(20 + 12 * i, 32 + 12 * i);
    const [keyOffset, valueOffset, keyLength, valueLength] = [
      e.readUInt32LE(0),
      e.readUInt32LE(4),
      e.readUInt16LE(8),
      e.readUInt16LE(10),
    ];
    if (keyOffset + keyLength > locator.length || valueOffset + valueLength > locator.length) continue;
    values.set(
      locator.toString("utf16le", keyOffset, keyOffset + keyLength),
      locator.toString("utf16le", valueOffset, valueOffset + valueLength),
    );
  }
  return values.get("relative_path") ?? values.get("absolute_win32_path") ?? values.get("volume_path") ?? "";
}
