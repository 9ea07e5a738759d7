/**
 * One disk of an OVA streamed into any writable format (convertFile does this when its input is an OVA). The
 * manifest, when the OVA has one, is verified by a sequential read of the archive running alongside the
 * conversion; the output takes its name only once both have succeeded, so a damaged or altered archive never
 * leaves a converted disk behind (a mismatch stops the conversion as soon as it is found). The output is opened
 * (checked and locked) by convertFile, which discards it if anything here fails.
 */
import type { ConvertFileRequest, ConvertFileResult, ConvertStats, convertImage } from "../engine/convert.js";
import { CorruptImageError, UnsupportedFeatureError, UsageError } from "../errors.js";
import { getDriver } from "../registry.js";
import type { FileOutput } from "../io/output-file.js";
import { openOva, verifyOvaManifest, type ManifestCheck } from "./ova-reader.js";
import { checkReadable, openInflatedDisk, openOvaDisk } from "./ova-disk-source.js";
import type { ImageInput } from "../inputs/image-input.js";
import { openImage } from "../engine/open-image.js";
import { hrefToMemberName } from "./file-members.js";
import { OvaInOrder } from "./ova-in-order.js";
import type { OvfDisk, OvfFileRef } from "./ovf-descriptor-reader.js";

export interface OvaConvertResult extends ConvertFileResult {
  readonly disk: number;
  readonly manifest: ManifestCheck | null;
  readonly warnings: readonly string[];
}

/**
 * The conversion pipeline, handed in by convertFile: the engine's convert module loads this one lazily, so
 * importing the pipeline from it here would close an import cycle.
 */
type Pipeline = typeof convertImage;

/**
 * Converts disk `request.disk` (default 1) of the OVA `from` into `output` (committed here on success): `from` is
 * a file's path (its members read where they lie), or an input read once in order (standard input, a URL;
 * ova-in-order.ts), which this closes.
 */
export async function convertOvaDisk(
  request: ConvertFileRequest,
  from: string | ImageInput,
  pipeline: Pipeline,
  output: FileOutput,
): Promise<OvaConvertResult> {
  const diskNumber = request.disk ?? 1;
  if (!Number.isInteger(diskNumber) || diskNumber < 1) {
    if (typeof from !== "string") await from.close();
    throw new UsageError(`--disk ${request.disk} is not a disk number (1, 2, …)`);
  }
  if (typeof from !== "string") return convertInOrder(from, request, diskNumber, pipeline, output);
  const outDriver = getDriver(request.outputFormat);
  const ova = await openOva(from);
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
      stats = await pipeline(source, target, { ...request, signal: controller.signal });
    } catch (e) {
      // A failed verification stops the conversion, and is what went wrong; a cancellation stops both.
      if (verifyError && !request.signal?.aborted) throw verifyError;
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

/**
 * Converts disk `diskNumber` of an OVA read once in order: the disk is converted as its member passes, the
 * rest of the archive is read on for the manifest's sake, and the output takes its name only once the
 * archive has been read to its end and verified. Only a disk stored whole can be read so (a gzip-compressed one
 * as it inflates): a chunked one is refused with what to do instead.
 */
async function convertInOrder(
  input: ImageInput,
  request: ConvertFileRequest,
  diskNumber: number,
  pipeline: Pipeline,
  output: FileOutput,
): Promise<OvaConvertResult> {
  const outDriver = getDriver(request.outputFormat);
  try {
    const ova = await OvaInOrder.open(input, { verify: request.verifyManifest !== false, signal: request.signal });
    const { disk, file } = descriptorDisk(ova, diskNumber);
    const label = `${ova.path}:${file.href}`;
    checkReadable(label, disk, file);
    if (file.chunkSize !== undefined) {
      throw new UnsupportedFeatureError(
        `${label}: disk ${diskNumber} is stored in chunks, which cannot be read from an OVA read in order; save ` +
          "the OVA to a file and convert it from there",
      );
    }
    const memberName = hrefToMemberName(file, ova.path);
    let stats: ConvertStats | undefined;
    let format = "";
    for (let member = await ova.next(); member; member = await ova.next()) {
      if (/\.0+$/.test(member.name) && member.name.replace(/\.0+$/, "") === memberName) {
        throw new UnsupportedFeatureError(
          `${label}: disk ${diskNumber} is stored in chunks (${member.name}, …), which cannot be read from an ` +
            "OVA read in order; save the OVA to a file and convert it from there",
        );
      }
      if (member.name !== memberName) continue;
      try {
        const stored = await ova.take(member);
        const source = file.compression
          ? await openInflatedDisk(stored, disk, label)
          : (await openImage(stored, { format: disk.format ? "vmdk" : undefined })).source;
        try {
          const target = await outDriver.create!(output, source.virtualSize, request.createOptions ?? {});
          stats = await pipeline(source, target, request);
          format = source.format;
        } finally {
          await source.close();
        }
      } catch (e) {
        throw ova.cutShort(e);
      }
    }
    const { archive, manifest } = await ova.finish();
    for (const w of archive.warnings) request.onWarning?.(w);
    if (!stats) throw new CorruptImageError(`${label}: the archive ended before disk ${diskNumber}'s file`);
    await output.commit({ sync: request.sync ?? true });
    return {
      ...stats,
      inputFormat: `ova/${format}`,
      outputFormat: outDriver.name,
      output: request.output,
      disk: diskNumber,
      manifest: manifest ?? null,
      warnings: archive.warnings,
    };
  } finally {
    await input.close();
  }
}

/** Disk `index` of the DiskSection (1-based, as --disk counts) and the file holding it. */
function descriptorDisk(ova: OvaInOrder, index: number): { disk: OvfDisk; file: OvfFileRef } {
  const { disks, files } = ova.descriptor;
  const disk = disks[index - 1];
  const file = disk?.fileRef === undefined ? undefined : files.find((f) => f.id === disk.fileRef);
  if (!disk || !file) {
    const have = disks.flatMap((d, i) => (d.fileRef ? [i + 1] : [])).join(", ") || "none";
    throw new UnsupportedFeatureError(`${ova.path}: no disk ${index} with content in the appliance (disks: ${have})`);
  }
  return { disk, file };
}
