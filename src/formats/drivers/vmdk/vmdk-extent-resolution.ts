/**
 * Opening the extents a VMDK descriptor file lists (monolithicFlat, twoGbMaxExtentSparse/Flat, vmfs, custom).
 *
 * Where extents may live: the format keeps a descriptor and its extents side by side, so an extent named
 * relative to the descriptor's own folder (or a folder below it) is opened by default. Anything else (an
 * absolute path, a name with `..`, a symbolic link in the folder leading elsewhere) is refused with
 * ReferenceRefusedError unless the caller's ReferencePolicy lists that exact real path. The rule itself is
 * the engine's, shared with the other formats' references (the ReferenceOpener).
 *
 * Supported extent types: FLAT and VMFS (raw data), SPARSE (a KDMV hosted sparse file), ZERO. Device-backed
 * (VMFSRDM, VMFSRAW), delta (VMFSSPARSE, SESPARSE) and NOACCESS extents are refused as unsupported.
 */
import { CorruptImageError, UnsupportedFeatureError } from "../../errors.js";
import { buildOn, type ImageInput } from "../../inputs/image-input.js";
import type { ReferenceOpener } from "../../types.js";
import type { ExtentLine, VmdkDescriptor } from "./vmdk-descriptor.js";
import { FlatExtent, ZeroExtent, type VmdkExtent } from "./vmdk-extent.js";
import { SPARSE_MAGIC, SECTOR } from "./vmdk-sparse-header.js";
import { SparseExtent } from "./vmdk-sparse-extent.js";

/**
 * Opens every extent of `descriptor` (read from `descriptorFile`), checking every extent's type before any
 * file is opened and each name against the reference rules as it is opened. On failure, extents already
 * opened are closed.
 */
export async function openDescriptorExtents(
  descriptorFile: ImageInput,
  descriptor: VmdkDescriptor,
  references: ReferenceOpener,
): Promise<VmdkExtent[]> {
  const descriptorPath = descriptorFile.path;
  if (descriptor.extents.length === 0) {
    throw new CorruptImageError(`${descriptorPath}: the VMDK descriptor lists no extents`);
  }
  // Types and names first: nothing is opened for a descriptor that would be refused anyway.
  for (const line of descriptor.extents) {
    checkSupported(descriptorPath, line);
    if (line.type !== "ZERO" && (line.fileName === undefined || line.fileName === "")) {
      throw new CorruptImageError(`${descriptorPath}: extent line names no file: ${line.text}`);
    }
  }
  const opened: VmdkExtent[] = [];
  try {
    for (const line of descriptor.extents) {
      const file =
        line.type === "ZERO"
          ? undefined
          : await references.openFile(descriptorFile, line.fileName!, "extent", { sameFolder: true });
      opened.push(await openExtent(descriptorPath, line, file));
    }
    return opened;
  } catch (e) {
    await Promise.allSettled(opened.map((x) => x.close()));
    throw e;
  }
}

function checkSupported(descriptorPath: string, line: ExtentLine): void {
  if (line.access === "NOACCESS") {
    throw new UnsupportedFeatureError(`${descriptorPath}: NOACCESS extents cannot be read: ${line.text}`);
  }
  switch (line.type) {
    case "FLAT":
    case "VMFS":
    case "SPARSE":
    case "ZERO":
      return;
    case "VMFSSPARSE":
    case "SESPARSE":
      throw new UnsupportedFeatureError(
        `${descriptorPath}: ${line.type} extents (ESXi snapshot deltas) are not supported: ${line.text}`,
      );
    case "VMFSRDM":
    case "VMFSRAW":
      throw new UnsupportedFeatureError(
        `${descriptorPath}: ${line.type} extents map a raw device, which chromogenic does not open: ${line.text}`,
      );
    default:
      throw new UnsupportedFeatureError(`${descriptorPath}: unknown extent type ${line.type}: ${line.text}`);
  }
}

async function openExtent(
  descriptorPath: string,
  line: ExtentLine,
  input: ImageInput | undefined,
): Promise<VmdkExtent> {
  const length = line.sectors * SECTOR;
  if (input === undefined) return new ZeroExtent(length);
  const path = input.path;
  return buildOn(input, async (file) => {
    if (line.type === "FLAT" || line.type === "VMFS") return new FlatExtent(file, length, line.offset * SECTOR);
    const head = await file.readPadded(0, 4);
    if (head.readUInt32LE(0) !== SPARSE_MAGIC) {
      throw new CorruptImageError(`${path}: SPARSE extent of ${descriptorPath} is not a VMDK sparse file (no KDMV)`);
    }
    const extent = await SparseExtent.open(file);
    // qemu sizes a sparse extent by its header; a descriptor that disagrees describes a different disk.
    if (extent.length !== length) {
      throw new CorruptImageError(
        `${path}: sparse extent holds ${extent.header.capacity} sectors, but ${descriptorPath} lists it as ` +
          `${line.sectors}: ${line.text}`,
      );
    }
    return extent;
  });
}
