/**
 * `export --bootable` of local disks: the boot disk (the first input) made bootable on a PC by the bootable
 * step (makeBootable + Xen → KVM) into a raw working disk in a private folder beside the output, and that disk
 * packed into the OVA in its place; a disk that already boots is packed as it is. The folder is removed on every
 * exit path (makeBootable's own guest journal undoes its mounts and loop devices).
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, extname, join, resolve } from "node:path";
import { openImage } from "../formats/engine/open-image.js";
import { defaultName, exportOva, type OvaExportRequest, type OvaExportResult } from "../formats/ova/ova-writer.js";
import { UsageError } from "../util/errors.js";
import type { WorkListener } from "../util/events.js";
import { bootableRaw, bootableUnavailable, type BootableOptions } from "./bootable-step.js";
import type { BootableSummary } from "./job-state.js";

export interface BootableOvaRequest extends OvaExportRequest {
  readonly bootable: BootableOptions;
  /** The bootable step's phases and the Xen conversion's events (the OVA's progress goes to onProgress). */
  readonly onEvent?: WorkListener;
}

export type BootableOvaResult = OvaExportResult & { readonly bootable: BootableSummary };

export async function exportBootableOva(request: BootableOvaRequest): Promise<BootableOvaResult> {
  const why = bootableUnavailable();
  if (why) throw new UsageError(`--bootable: ${why}`);
  const [first, ...rest] = request.inputs;
  if (typeof first !== "string") throw new UsageError("--bootable needs the boot disk as a file");
  // Beside the output (its filesystem has room for the disk), or in the temporary folder for standard output.
  const near = request.output === "-" ? (request.tempDir ?? tmpdir()) : dirname(resolve(request.output));
  await mkdir(near, { recursive: true });
  const work = await mkdtemp(join(near, ".chromogenic-export-"));
  try {
    const raw = join(work, `${basename(first, extname(first)) || "disk"}.raw`);
    const bootable = await bootableRaw({ path: first, format: request.inputFormat }, raw, {
      ...request.bootable,
      workDir: work,
      references: request.references,
      signal: request.signal,
      onEvent: request.onEvent,
    });
    if (bootable.alreadyBootable) return { ...(await exportOva(request)), bootable };
    const { source } = await openImage(raw, { format: "raw" });
    try {
      const result = await exportOva({
        ...request,
        name: request.name ?? defaultName(first),
        inputs: [source, ...rest],
      });
      return { ...result, bootable };
    } finally {
      await source.close();
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
