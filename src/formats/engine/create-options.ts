import type { CreateOptions } from "../types.js";
import { UsageError } from "../errors.js";

/**
 * Parses qemu-img style `-o key=value,key=value` text (several -o may be given). A doubled comma stands
 * for a literal comma in a value, as in qemu.
 */
export function parseCreateOptions(texts: readonly string[]): CreateOptions {
  const result: Record<string, string> = {};
  for (const text of texts) {
    // Split on single commas only: a doubled comma is an escaped literal comma.
    const items = text.split(/(?<!,),(?!,)/);
    for (const raw of items) {
      const item = raw.replaceAll(",,", ",").trim();
      if (!item) continue;
      const eq = item.indexOf("=");
      if (eq <= 0) throw new UsageError(`option "${item}" is not of the form key=value`);
      const key = item.slice(0, eq).trim();
      if (Object.hasOwn(result, key)) throw new UsageError(`option "${key}" given twice`);
      result[key] = item.slice(eq + 1).trim();
    }
  }
  return result;
}

/** Parses sizes like 65536, 64k, 64K, 2M, 1G (binary units, as qemu-img does). */
export function parseSize(text: string, what: string): number {
  const m = /^(\d+)([kKmMgGtT]?)[bB]?$/.exec(text.trim());
  if (!m) throw new UsageError(`${what}: "${text}" is not a size (examples: 65536, 64k, 2M)`);
  const unit = { "": 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[m[2]!.toLowerCase()]!;
  const n = Number(m[1]) * unit;
  if (!Number.isSafeInteger(n)) throw new UsageError(`${what}: "${text}" is too large`);
  return n;
}
