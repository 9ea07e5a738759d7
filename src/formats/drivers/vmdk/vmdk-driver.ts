/**
 * The VMDK format driver: recognises sparse files by their magic ("KDMV", and ESX's "COWD" only to refuse it
 * clearly) and descriptor files by their text; opens every common layout for reading (VmdkSource) and writes
 * monolithicSparse (seekable output) and streamOptimized (any output, a pipe included). A streamOptimized file
 * can also be read from a pipe, in order (vmdk-stream-source.ts).
 */
import { basename } from "node:path";
import type { CreateOptions, FormatDriver, ImageTarget, ProbeInput } from "../../types.js";
import type { OutputFile } from "../../io/output-file.js";
import { loadVmdkCreateOptions, vmdkWriterSettings } from "./vmdk-writer-settings.js";
import { COWD_MAGIC, SPARSE_MAGIC } from "./vmdk-sparse-header.js";
import { VmdkSource } from "./vmdk-source.js";
import { looksLikeDescriptor } from "./vmdk-descriptor.js";

import { createSparseTarget } from "./vmdk-sparse-target.js";
import { createStreamTarget } from "./vmdk-stream-target.js";

/** Extent name written in the descriptor when the output has no file name (a pipe). */
const DEFAULT_EXTENT_NAME = "disk.vmdk";

function probe({ head }: ProbeInput): number {
  if (head.length >= 4) {
    const magic = head.readUInt32LE(0);
    if (magic === SPARSE_MAGIC || magic === COWD_MAGIC) return 100;
  }
  return looksLikeDescriptor(head) ? 100 : 0;
}

async function create(output: OutputFile, virtualSize: number, options: CreateOptions) {
  const settings = await vmdkWriterSettings(options);
  const finalPath = (output as { finalPath?: unknown }).finalPath;
  const extentName = typeof finalPath === "string" ? basename(finalPath) : DEFAULT_EXTENT_NAME;
  const target: ImageTarget =
    settings.subformat === "streamOptimized"
      ? await createStreamTarget(output, virtualSize, settings, extentName)
      : await createSparseTarget(output, virtualSize, settings, extentName);
  return target;
}

export const vmdkDriver = {
  name: "vmdk",
  description:
    "VMware virtual disk: reads monolithicSparse, streamOptimized, monolithicFlat, twoGbMaxExtent*, vmfs; " +
    "writes monolithicSparse and streamOptimized; reads streamOptimized from a pipe",
  probe,
  open: (input, context) => VmdkSource.open(input, context),
  create,
  createOptions: loadVmdkCreateOptions,
  // A sparse extent's grain directory and tables are written last, at the front; a stream's come after its grains.
  writeAccess: (options) => (options.subformat === "streamOptimized" ? "sequential" : "random"),
  importOptions: { subformat: "streamOptimized" },
  openOptions: [],
} as const satisfies FormatDriver;
