/**
 * Creating a VDI: validates the `-o` options before a byte is written, plans the layout and hands over to the
 * writer for the chosen variant. The block size is fixed at 1 MiB, the only one qemu reads and VirtualBox's default.
 */
import type { OutputFile } from "../../io/output-file.js";
import type { CreateOptions, ImageTarget } from "../../types.js";
import { validateCreateOptions } from "../../engine/create-option-validation.js";
import { VdiDynamicTarget } from "./vdi-dynamic-target.js";
import { planVdiLayout } from "./vdi-layout.js";
import { VdiStaticTarget } from "./vdi-static-target.js";

/** The schema, loaded when there are options to check (zod stays out of a plain conversion's start-up). */
export const loadVdiCreateOptions = async () => (await import("./vdi-create-options.js")).vdiCreateOptions;

export async function createVdiTarget(
  output: OutputFile,
  virtualSize: number,
  options: CreateOptions,
): Promise<ImageTarget> {
  const isStatic = (await validateCreateOptions("vdi", loadVdiCreateOptions, options)).static ?? false;
  const layout = planVdiLayout(isStatic ? "static" : "dynamic", virtualSize);
  return isStatic ? VdiStaticTarget.create(output, layout) : new VdiDynamicTarget(output, layout);
}
