/**
 * `convert X.ova OUT`: streams one disk out of an appliance into any writable format. The manifest, when the
 * OVA has one, is verified by a sequential read of the archive running alongside the conversion; the output
 * takes its name only once both have succeeded, so a damaged or altered archive never leaves a
 * converted disk behind (a mismatch stops the conversion as soon as it is found).
 */
import { realpath } from "node:fs/promises";
import type { OutputFormatChoice } from "../create-options-for.js";
import { UsageError } from "../errors.js";
import { getDriver } from "../registry.js";
import { openOutputFile } from "../io/open-output.js";
import type { FileOutput } from "../io/output-file.js";
import { outputModeFor } from "../io/output-mode.js";
import { withForceShare } from "../io/force-share.js";
import { convertImage, type ConvertStats, type PipelineOptions } from "../engine/convert.js";
import { openOva, verifyOvaManifest, type ManifestCheck } from "./ova-reader.js";
import { openOvaDisk } from "./ova-disk-source.js";

export interface OvaConvertRequest<F extends string = string> extends PipelineOptions, OutputFormatChoice<F> {
  readonly input: string;
  readonly output: string;
  /** 1-based disk number in the appliance's DiskSection; default 1. */
  readonly disk?: number;
  /** Verify the manifest (default true when there is one). */
  readonly verifyManifest?: boolean;
  /** Told each warning as soon as it is known (what the manifest does not cover, …); also in the result. */
  readonly onWarning?: (text: string) => void;
  /** Written where it is (qemu-img convert -n); see ConvertFileRequest.inPlace. */
  readonly inPlace?: boolean;
  /** Read the OVA even while another process writes it, taking no lock (qemu-img -U). */
  readonly forceShare?: boolean;
  /** fsync the output before it takes its name (default true). */
  readonly sync?: boolean;
}

export interface OvaConvertResult extends ConvertStats {
  readonly inputFormat: string;
  readonly outputFormat: string;
  readonly output: string;
  readonly disk: number;
  readonly manifest: ManifestCheck | null;
  readonly warnings: readonly string[];
}

export async function convertOvaDisk<const F extends string>(request: OvaConvertRequest<F>): Promise<OvaConvertResult> {
  const outDriver = getDriver(request.outputFormat);
  if (!outDriver.create) throw new UsageError(`format ${outDriver.name} cannot be written`);
  const inputReal = await realpath(request.input);
  const outputReal = await realpath(request.output).catch(() => null);
  if (outputReal === inputReal) throw new UsageError(`output ${request.output} is the input itself`);
  const diskNumber = request.disk ?? 1;
  if (!Number.isInteger(diskNumber) || diskNumber < 1)
    throw new UsageError(`--disk ${request.disk} is not a disk number (1, 2, …)`);

  const output = await openOutputFile(request.output, {
    inPlace: request.inPlace,
    mode: await outputModeFor(request.input),
  });
  try {
    return await withForceShare(request.forceShare, () => convertDiskInto(output, diskNumber, request));
  } finally {
    await output.discard();
  }
}

/** Streams disk `diskNumber` of the OVA into `output` (committed here once the manifest has checked out). */
async function convertDiskInto<const F extends string>(
  output: FileOutput,
  diskNumber: number,
  request: OvaConvertRequest<F>,
): Promise<OvaConvertResult> {
  const outDriver = getDriver(request.outputFormat);
  const ova = await openOva(request.input);
  for (const w of ova.warnings) request.onWarning?.(w);
  const source = await openOvaDisk(ova, diskNumber);
  const controller = new AbortController();
  const forward = () => controller.abort(request.signal?.reason);
  request.signal?.addEventListener("abort", forward);
  let verifyError: unknown;
  const verification =
    request.verifyManifest === false
      ? Promise.resolve(undefined)
      : verifyOvaManifest(ova, controller.signal).catch((e: unknown) => {
          verifyError = e;
          controller.abort(e);
          throw e;
        });
  verification.catch(() => undefined);
  try {
    const target = await outDriver.create!(output, source.virtualSize, request.createOptions ?? {});
    let stats: ConvertStats;
    try {
      stats = await convertImage(source, target, { ...request, signal: controller.signal });
    } catch (e) {
      if (verifyError) throw verifyError;
      throw e;
    }
    const manifest = await verification;
    await output.commit({ sync: request.sync ?? true });
    return {
      ...stats,
      inputFormat: `ova/${source.format}`,
      outputFormat: outDriver.name,
      output: request.output,
      disk: diskNumber,
      manifest: manifest ?? null,
      warnings: ova.warnings,
    };
  } finally {
    request.signal?.removeEventListener("abort", forward);
    await source.close();
  }
}
