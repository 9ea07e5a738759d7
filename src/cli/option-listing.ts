/**
 * How the CLI lists a format's options: `chromogenic formats` for every format, `convert -o help` for the
 * output format (as qemu-img prints the output format's options for `-o help`).
 */
import { describeCreateOptions } from "../formats/engine/create-option-docs.js";
import type { CreateOptionDoc, FormatDriver } from "../formats/types.js";
import { UsageError } from "../formats/errors.js";

/** One option on one line: `    -o cluster_size  description (values: …; default: …)`. */
export function optionLine(flag: string, o: CreateOptionDoc): string {
  const extra = [o.values && `values: ${o.values}`, o.default && `default: ${o.default}`].filter(Boolean);
  return `    ${flag} ${o.name}  ${o.description}${extra.length ? ` (${extra.join("; ")})` : ""}\n`;
}

/** `-o help`: the create options of `driver`, from its schema. */
export async function createOptionHelp(driver: FormatDriver): Promise<string> {
  if (!driver.create) throw new UsageError(`format ${driver.name} cannot be written`);
  const options = await describeCreateOptions(driver);
  if (!options.length) return `${driver.name} takes no -o options\n`;
  return `${driver.name} options (-o key=value,…):\n${options.map((o) => optionLine("-o", o)).join("")}`;
}
