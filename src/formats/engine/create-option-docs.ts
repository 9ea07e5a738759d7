/**
 * A driver's create options as `chromogenic formats` and `-o help` list them, read from its schema: the key,
 * and the description, values and default recorded there (create-option-schema.ts).
 */
import * as z from "zod";
import type { CreateOptionDoc, FormatDriver } from "../types.js";
import { createOptionMeta } from "./create-option-schema.js";

export async function describeCreateOptions(driver: FormatDriver): Promise<CreateOptionDoc[]> {
  const schema = await driver.createOptions?.();
  if (!schema) return [];
  return Object.entries(schema.shape).map(([name, field]) => {
    const value = field instanceof z.ZodOptional ? field.unwrap() : field;
    const meta = { ...createOptionMeta.get(value), ...createOptionMeta.get(field) };
    if (!meta.description) throw new Error(`internal: ${driver.name} option ${name} has no description`);
    return { name, description: meta.description, values: meta.values, default: meta.default };
  });
}
