/**
 * How a job moves its image, decided before any byte moves (and saved, so a resume follows the same plan):
 * the mode (passthrough, convert, clean), how the source is read, how the result reaches its destination, and
 * the temporary space that takes — what the preflight checks. Pure: the caller gathers the facts.
 */
import { UsageError } from "../formats/errors.js";
import { findDriver, getDriver, isPlainDisk } from "../formats/registry.js";
import { isOvaFormat } from "../formats/ova/ova-format.js";
import { createOptionsFor } from "./output-options.js";
import type { JobPlan, JobRequest } from "./job-state.js";

export interface PlanFacts {
  readonly request: JobRequest;
  /**
   * `xenGuest`: the source store says the image is a Xen guest (migrate then makes it bootable by default);
   * `pieceBytes`: what a download of it keeps as verified pieces for a resume (a bundle's compressed size).
   */
  readonly source: {
    readonly format: string;
    readonly size: number;
    readonly xenGuest?: boolean;
    readonly pieceBytes?: number;
  };
  /** Bytes the source occupies on this host, when the store keeps it as a local file (read in place). */
  readonly sourceLocalAllocated?: number;
  /** Whether the source store offers positional reads. */
  readonly sourceRandomAccess: boolean;
  /** The destination store's disk formats, most preferred first (a store destination only). */
  readonly destinationFormats?: readonly string[];
  readonly destinationLabel?: string;
  readonly workDir: string;
}

export function planTransfer(facts: PlanFacts): JobPlan {
  const { request, source: src } = facts;
  const dest = request.destination;
  const notes: string[] = [];
  let targetFormat: string;
  if (dest.kind === "file" || dest.format) {
    targetFormat = dest.format!;
  } else if (request.kind === "image-create") {
    targetFormat = src.format;
  } else {
    targetFormat = facts.destinationFormats![0]!;
    notes.push(`${targetFormat}: the destination's preferred disk format`);
  }
  if (dest.kind === "cloud") {
    const accepted = facts.destinationFormats ?? [];
    if (!accepted.includes(targetFormat)) {
      throw new UsageError(
        `${facts.destinationLabel} does not store ${targetFormat} (it takes ${accepted.join(", ")})`,
      );
    }
  }
  // An unknown format is refused before anything moves.
  const driver = isOvaFormat(targetFormat) ? undefined : getDriver(targetFormat);
  const bootable =
    request.bootable?.when === "always" || (request.bootable?.when === "xen-source" && src.xenGuest === true);
  // A disk made bootable is rewritten, so it is never passed through even in its own format.
  const mode = request.clean ? "clean" : targetFormat === src.format && !bootable ? "passthrough" : "convert";
  const local = facts.sourceLocalAllocated !== undefined;
  let sourceAccess: JobPlan["sourceAccess"];
  if (local) sourceAccess = "local-file";
  else if (mode === "passthrough") sourceAccess = "stream";
  else if (mode === "clean" && isPlainDisk(src.format)) sourceAccess = "stream";
  // The bootable step reads a file (it mounts the guest): without cleaning's working copy, the source is one.
  else if (bootable && mode !== "clean") sourceAccess = "download";
  // Every target, an OVA's VMDK included (exportOva takes an open source), reads the source where it is: every
  // driver reads through an input, HTTP Range included, so no temporary copy is made and the preflight asks
  // for none. A format no driver reads is downloaded as stored (and refused when opened).
  else if (findDriver(src.format) && facts.sourceRandomAccess && !request.downloadFirst) sourceAccess = "random-access";
  else sourceAccess = "download";
  const targetAccess: JobPlan["targetAccess"] =
    dest.kind === "file"
      ? "file"
      : mode === "passthrough" || driver?.writeAccess?.(createOptionsFor(targetFormat, "cloud")) === "sequential"
        ? "stream"
        : "temporary-file";
  // The disk's allocated data: what a sparse working copy or a compact output holds. Known for a local file,
  // else estimated by the stored size (a compact format's size is its data; a raw image's is an upper bound; a
  // compressed qcow2's is less: the preflight asks the open source for its guest data and uses temporarySpace).
  const allocated = facts.sourceLocalAllocated ?? src.size;
  const flow: Flow = { mode, sourceAccess, targetAccess, bootable };
  const pieces = keptPieceBytes(request, src);
  const temporaryBytes = temporarySpace(flow, src.size, allocated, pieces);
  if (pieces > 0 && downloadsIntoFile(flow)) {
    notes.push("the source's verified parts kept in the work directory until its download completes (--no-part-cache)");
  }
  if (sourceAccess === "download" || (mode === "clean" && sourceAccess === "stream")) {
    notes.push(
      mode === "clean" && isPlainDisk(src.format)
        ? "source downloaded straight into the sparse raw working copy"
        : `source downloaded once as stored (${src.format}, compact), resumably, then read locally`,
    );
  }
  if (mode === "clean" && sourceAccess !== "stream") notes.push("one sparse raw working copy, cleaned in place");
  if (targetAccess === "temporary-file") {
    notes.push(`${targetFormat} writer needs to seek: one compact temporary file, then uploaded`);
  }
  if (targetAccess === "stream" && mode !== "passthrough")
    notes.push(`${targetFormat} written straight into the upload`);
  if (bootable) {
    notes.push(
      request.bootable?.when === "xen-source"
        ? "the source is a Xen guest: made bootable on a PC first (--no-bootable copies it as it is)"
        : "made bootable on a PC first, in a raw working disk",
    );
  }
  if (mode === "passthrough") notes.push("bytes passed straight through, no temporary copy");
  if (sourceAccess === "random-access") notes.push(`${src.format} source read in place with positional (Range) reads`);
  if (sourceAccess === "local-file") notes.push("source read in place from the local store");
  return {
    mode,
    sourceFormat: src.format,
    targetFormat,
    sourceAccess,
    targetAccess,
    temporaryBytes,
    workDir: facts.workDir,
    ...(bootable ? { bootable } : {}),
    notes,
  };
}

type Flow = Pick<JobPlan, "mode" | "sourceAccess" | "targetAccess" | "bootable">;

/** Whether the plan downloads the source into a file (downloadToFile), where a part cache may be kept. */
function downloadsIntoFile(plan: Flow): boolean {
  return (
    plan.sourceAccess === "download" ||
    (plan.mode === "clean" && plan.sourceAccess === "stream") ||
    (plan.mode === "passthrough" && plan.targetAccess === "file")
  );
}

/** What a download keeps as verified pieces for a resume: none with --no-part-cache. */
export function keptPieceBytes(request: JobRequest, source: { readonly pieceBytes?: number }): number {
  return request.partCache === false ? 0 : (source.pieceBytes ?? 0);
}

/**
 * The temporary space a plan takes for a source stored in `storedBytes` that holds `dataBytes` of guest data:
 * a download keeps the stored bytes (into the work directory unless it is the output itself), and up to
 * `pieceBytes` of verified pieces beside them; a sparse raw working copy, the bootable step's two disks and a
 * compact temporary output hold the data.
 */
export function temporarySpace(plan: Flow, storedBytes: number, dataBytes: number, pieceBytes = 0): number {
  let bytes = 0;
  if (plan.sourceAccess === "download" || (plan.mode === "clean" && plan.sourceAccess === "stream")) {
    bytes += storedBytes;
  }
  if (downloadsIntoFile(plan)) bytes += pieceBytes;
  if (plan.mode === "clean" && plan.sourceAccess !== "stream") bytes += dataBytes;
  if (plan.targetAccess === "temporary-file") bytes += dataBytes;
  // The bootable step's raw working disk and the disk it writes out (a little more than the data: the layout).
  if (plan.bootable) bytes += 2 * dataBytes;
  return bytes;
}
