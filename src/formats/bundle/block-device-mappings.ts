/**
 * `-B ami=sda1,root=/dev/sda1,ephemeral0=sdb`: the block device mappings a bundle's manifest carries, parsed as
 * euca2ools parses them (VIRTUAL=DEVICE pairs, blanks ignored) and kept sorted by virtual name, the order its
 * writer puts them in.
 */
import { UsageError } from "../errors.js";

export function parseBlockDeviceMappings(text: string): [string, string][] {
  const mappings = new Map<string, string>();
  for (const item of text.split(",")) {
    if (!item.trim()) continue;
    const bits = item.trim().split("=");
    const [virtual, device] = bits.map((b) => b.trim());
    if (bits.length !== 2 || !virtual || !device) {
      throw new UsageError(`-B: invalid device mapping "${item}" (must be VIRTUAL=DEVICE, e.g. root=/dev/sda1)`);
    }
    mappings.set(virtual, device);
  }
  return [...mappings].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
