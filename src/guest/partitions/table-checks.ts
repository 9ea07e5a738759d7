import { CorruptImageError } from "../../formats/errors.js";
import type { Partition } from "./partition.js";

/**
 * Refuses a table whose partitions lie beyond the disk, start inside the table itself, or overlap: a loop
 * device over such a range would let one "partition" read or write another's data, or the host would see
 * bytes past the image.
 */
export function checkPartitionLayout(
  where: string,
  partitions: readonly Partition[],
  diskSize: number,
  firstUsable: number,
): void {
  for (const p of partitions) {
    if (p.size <= 0) throw new CorruptImageError(`${where}: partition ${p.number} is empty`);
    if (p.offset < firstUsable)
      throw new CorruptImageError(`${where}: partition ${p.number} starts at byte ${p.offset}, inside the table`);
    if (p.offset + p.size > diskSize)
      throw new CorruptImageError(
        `${where}: partition ${p.number} (bytes ${p.offset}–${p.offset + p.size}) ends beyond the disk (${diskSize} bytes)`,
      );
  }
  const sorted = [...partitions].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const cur = sorted[i]!;
    if (cur.offset < prev.offset + prev.size)
      throw new CorruptImageError(`${where}: partitions ${prev.number} and ${cur.number} overlap`);
  }
}
