import type { CreateOptionValue } from "../types.js";
import { UsageError } from "../errors.js";

/** Items are separated by single commas only: a doubled comma is an escaped literal comma. */
const ITEM_SEPARATOR = /(?<!,),(?!,)/;

/**
 * Parses qemu-img style `-o key=value,key=value` text (several -o may be given). A doubled comma stands
 * for a literal comma in a value, as in qemu.
 */
export function parseCreateOptions(texts: readonly string[]): Readonly<Record<string, string>> {
  const result: Record<string, string> = {};
  for (const text of texts) {
    for (const raw of text.split(ITEM_SEPARATOR)) {
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

/** True when `-o help` (or qemu's `-o ?`) is among the texts: the output format's options are wanted. */
export function asksForOptionHelp(texts: readonly string[]): boolean {
  return texts.some((text) => text.split(ITEM_SEPARATOR).some((item) => ["help", "?"].includes(item.trim())));
}

/** Bytes of a size like 65536, 64k, 64K, 2M, 1G (binary units, as qemu-img), or undefined if it is not one. */
export function sizeInBytes(text: string): number | undefined {
  const m = /^(\d+)([kKmMgGtT]?)[bB]?$/.exec(text.trim());
  if (!m) return undefined;
  const unit = { "": 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[m[2]!.toLowerCase()]!;
  const n = Number(m[1]) * unit;
  return Number.isSafeInteger(n) ? n : undefined;
}

/** The words a switch is set with (a program may also give a boolean). */
export const SWITCH_WORDS = ["on", "off", "true", "false"] as const;

/** The state of an on/off option's value; undefined when it is neither (or absent). */
export function switchState(value: CreateOptionValue | undefined): boolean | undefined {
  if (value === true || value === "on" || value === "true") return true;
  if (value === false || value === "off" || value === "false") return false;
  return undefined;
}
