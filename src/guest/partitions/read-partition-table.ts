import type { ImageSource } from "../../formats/types.js";
import { parseGpt } from "./gpt.js";
import { hasMbrSignature, parseMbr } from "./mbr.js";
import type { PartitionTable } from "./partition.js";

/**
 * Reads a disk's partition table through the engine, so it works on any format the engine opens. A protective
 * MBR (type 0xEE) means GPT. Returns null for a disk with no table (a bare filesystem); a table that is present
 * but hostile or damaged is a CorruptImageError.
 */
export async function readPartitionTable(source: ImageSource, where: string): Promise<PartitionTable | null> {
  if (source.virtualSize < 512) return null;
  const sector0 = await source.read(0, 512);
  if (!hasMbrSignature(sector0)) return null;
  const types = [0, 1, 2, 3].map((i) => sector0[446 + i * 16 + 4]);
  if (types.includes(0xee)) return parseGpt(source, where);
  return parseMbr(source, sector0, where);
}
