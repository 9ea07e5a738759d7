/**
 * The pieces drivers build their create option schemas from. One zod object per driver declares every `-o` key
 * with the values it takes and its documentation; from it come the validation (create-option-validation.ts),
 * the listing of `chromogenic formats` and `-o help` (create-option-docs.ts) and the library's TypeScript type
 * (create-options-for.ts).
 *
 * Values are what qemu-img's `-o` takes (text), or from a program a number or boolean where that is natural;
 * either way a value is checked the same way and comes out as what the writer uses. No option has a default
 * here: a schema turns `{}` into `{}`, which lets a conversion without options skip loading zod, and the writer
 * applies its defaults (documented beside each option).
 *
 * Error messages complete "<format>: <key>=<value> …", so each says what the value should have been.
 */
import * as z from "zod";
import { SWITCH_WORDS, sizeInBytes, switchState } from "./create-options.js";
import type { CreateOptionDoc } from "../types.js";

/** What the listing shows of an option besides its name; a value builder records `values` on its own part. */
export const createOptionMeta = z.registry<Partial<Omit<CreateOptionDoc, "name">>>();

/** A driver's schema: exactly these keys, each optional. */
export function createOptionsSchema<const Shape extends Record<string, z.ZodOptional>>(shape: Shape) {
  return z.strictObject(shape);
}

/** One option: optional, with its description and the default the writer applies when it is absent. */
export function option<T extends z.ZodType>(value: T, doc: Omit<CreateOptionDoc, "name">): z.ZodOptional<T> {
  const optional = value.optional();
  createOptionMeta.add(optional, doc);
  return optional;
}

/** One of a fixed list of words. */
export function choice<const Values extends readonly [string, ...string[]]>(
  values: Values,
  problem = `is not one of ${values.join(", ")}`,
) {
  return z.enum(values, { error: problem }).register(createOptionMeta, { values: values.join("|") });
}

/** A switch: on/off (or true/false) as text, or a boolean. */
export function onOff() {
  const problem = "is not on or off";
  return z
    .union([z.boolean(), z.enum(SWITCH_WORDS)], { error: problem })
    .transform((value) => switchState(value)!)
    .register(createOptionMeta, { values: "on|off" });
}

/** An integer from `min` to `max`, as a number or decimal text. */
export function integer(min: number, max: number, problem = `is not an integer from ${min} to ${max}`) {
  return z
    .union([z.number(), z.templateLiteral([z.number()])], { error: problem })
    .transform((value, ctx) => {
      const n = typeof value === "number" ? value : /^\d+$/.test(value) ? Number(value) : Number.NaN;
      if (Number.isSafeInteger(n) && n >= min && n <= max) return n;
      ctx.issues.push({ code: "custom", message: problem, input: value });
      return z.NEVER;
    })
    .register(createOptionMeta, { values: min === max ? String(min) : `${min}..${max}` });
}

/** A power-of-two size in bytes from `min` to `max`: a number, or text like 65536, 64k or 2M. */
export function powerOfTwoSize(min: number, max: number) {
  const range = `a power of two from ${sizeText(min)} to ${sizeText(max)}`;
  return z
    .union([z.number(), z.string()], { error: `is not ${range}` })
    .transform((value, ctx) => {
      const bytes = typeof value === "number" ? value : sizeInBytes(value);
      if (bytes === undefined) {
        ctx.issues.push({ code: "custom", message: "is not a size (examples: 65536, 64k, 2M)", input: value });
        return z.NEVER;
      }
      if (Number.isSafeInteger(bytes) && bytes >= min && bytes <= max && (bytes & (bytes - 1)) === 0) return bytes;
      ctx.issues.push({ code: "custom", message: `is not ${range}`, input: value });
      return z.NEVER;
    })
    .register(createOptionMeta, { values: `${range} (suffixes k, M accepted)` });
}

/** 512, 4K, 2M, 256M: sizes as the documentation writes them. */
function sizeText(bytes: number): string {
  for (const [unit, factor] of [
    ["G", 2 ** 30],
    ["M", 2 ** 20],
    ["K", 2 ** 10],
  ] as const) {
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${unit}`;
  }
  return String(bytes);
}

/** The schema of a driver that takes no create options. */
export const noCreateOptions = createOptionsSchema({});
