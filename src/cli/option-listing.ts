/** How the CLI lists a format's options (`chromogenic formats`). */
import type { CreateOptionDoc } from "../formats/types.js";

/** One option on one line: `    -o cluster_size  description (values: …; default: …)`. */
export function optionLine(flag: string, o: CreateOptionDoc): string {
  const extra = [o.values && `values: ${o.values}`, o.default && `default: ${o.default}`].filter(Boolean);
  return `    ${flag} ${o.name}  ${o.description}${extra.length ? ` (${extra.join("; ")})` : ""}\n`;
}
