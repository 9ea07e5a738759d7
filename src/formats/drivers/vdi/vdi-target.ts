/**
 * Creating a VDI: validates the `-o` options before a byte is written, plans the layout and hands over to the
 * writer for the chosen variant. The block size is fixed at 1 MiB, the only one qemu reads and VirtualBox's default.
 */
import { UsageError } from "../../errors.js";
import type { OutputFile } from "../../io/output-file.js";
import type { CreateOptionDoc, CreateOptions, ImageTarget } from "../../types.js";
import { VdiDynamicTarget } from "./vdi-dynamic-target.js";
import { planVdiLayout } from "./vdi-layout.js";
import { VdiStaticTarget } from "./vdi-static-target.js";

export const vdiCreateOptions: readonly CreateOptionDoc[] = [
  {
    name: "static",
    description:
      "preallocate every block (VirtualBox's fixed-size image); the only variant that can be written to a pipe",
    values: "on|off",
    default: "off",
  },
];

/** qemu's spellings of a boolean option. */
const BOOLEAN_VALUES: Readonly<Record<string, boolean>> = { on: true, off: false, true: true, false: false };

export async function createVdiTarget(
  output: OutputFile,
  virtualSize: number,
  options: CreateOptions,
): Promise<ImageTarget> {
  const unknown = Object.keys(options).filter((key) => key !== "static");
  if (unknown.length) throw new UsageError(`vdi: unknown option(s) ${unknown.join(", ")} (vdi takes: static)`);
  const staticText = options.static ?? "off";
  const isStatic = BOOLEAN_VALUES[staticText];
  if (isStatic === undefined) throw new UsageError(`vdi: static=${staticText} is not on or off`);
  const layout = planVdiLayout(isStatic ? "static" : "dynamic", virtualSize);
  return isStatic ? VdiStaticTarget.create(output, layout) : new VdiDynamicTarget(output, layout);
}
