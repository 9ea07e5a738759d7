/**
 * A VHD opened for reading, fixed or dynamic. A fixed disk is its data followed by the footer; a dynamic disk
 * starts with a copy of the footer, then the dynamic header, the BAT and the blocks, and ends with the footer.
 * Differencing disks (a dynamic disk over a parent file) are refused: their parent locators name other files and
 * merging chains is not implemented.
 */
import type { Extent, ImageDetails, ImageSource, DriverOpenContext } from "../../types.js";
import { CorruptImageError, UnsupportedFeatureError } from "../../errors.js";
import { buildOn, type ImageInput } from "../../inputs/image-input.js";
import { requireRandomAccess } from "../../inputs/require-random-access.js";
import { fileExtents, type HoleFinder } from "../../io/seek-data.js";
import { checkDiskRange, readDestination, readFileRuns } from "../../engine/source-ranges.js";
import {
  VHD_FOOTER_SIZE,
  VHD_EPOCH_MS,
  VhdDiskType,
  diskTypeName,
  fourCc,
  hasFooterCookie,
  parseVhdFooter,
  type VhdFooter,
} from "./vhd-footer.js";
import { VHD_DYNAMIC_HEADER_SIZE, parseVhdDynamicHeader, type VhdDynamicHeader } from "./vhd-dynamic-header.js";
import { VhdBlockMap } from "./vhd-block-map.js";
import { creatorName, decideVhdSize, parseSizeChoice, type VhdSizeDecision } from "./vhd-size-rule.js";
import { formatGeometry } from "./vhd-geometry.js";

/** Which footer copies were found and whether they agree, shown in details(). */
type FooterCopies = "both, identical" | "both, differing" | "end only" | "start only" | "end";

interface Located {
  readonly footer: VhdFooter;
  readonly copies: FooterCopies;
}

export class VhdSource implements ImageSource {
  readonly format = "vhd";
  readonly virtualSize: number;
  private readonly holes: HoleFinder | null;

  private constructor(
    private readonly file: ImageInput,
    private readonly located: Located,
    private readonly size: VhdSizeDecision,
    private readonly header: VhdDynamicHeader | null,
    private readonly map: VhdBlockMap | null,
  ) {
    this.virtualSize = size.size;
    this.holes = map ? null : file.holes();
  }

  static async open(input: ImageInput, context: DriverOpenContext): Promise<VhdSource> {
    const choice = parseSizeChoice(context.driverOptions.size);
    return buildOn(input, async (file) => {
      requireRandomAccess(file, "vhd");
      const located = await locateFooter(file);
      const { footer } = located;
      if (footer.diskType === VhdDiskType.fixed) {
        const size = decideVhdSize(footer, choice);
        const dataBytes = file.size - VHD_FOOTER_SIZE;
        // The data area of a fixed disk is the disk: bytes past the largest size its footer states are data the
        // disk would lose, and a footer that says so is wrong in one way or another (see vhd-block-map.ts).
        const declared = declaredSize(size);
        if (dataBytes > declared) {
          throw new CorruptImageError(
            `${file.path}: fixed VHD holds ${dataBytes} bytes of data, but its footer declares a ${declared}-byte ` +
              "disk: the data past the declared size would be lost; the footer's size is wrong",
          );
        }
        if (size.size > dataBytes) {
          throw new CorruptImageError(
            `${file.path}: fixed VHD disk of ${size.size} bytes (by ${size.rule} size) does not fit in the file's ` +
              `${dataBytes} bytes of data: the file is truncated` +
              (size.rule === "chs" ? " (or its geometry is wrong: try the open option size=footer)" : ""),
          );
        }
        return new VhdSource(file, located, size, null, null);
      }
      if (footer.diskType !== VhdDiskType.dynamic && footer.diskType !== VhdDiskType.differencing) {
        throw new UnsupportedFeatureError(
          `${file.path}: VHD disk type ${diskTypeName(footer.diskType)} is not supported`,
        );
      }
      if (footer.dataOffset > BigInt(file.size)) {
        throw new CorruptImageError(
          `${file.path}: the VHD footer's data offset ${footer.dataOffset} (where the dynamic disk header should be) ` +
            `lies beyond the end of the file (${file.size} bytes)`,
        );
      }
      const headerOffset = Number(footer.dataOffset);
      const header = parseVhdDynamicHeader(
        file.path,
        await file.readExact(headerOffset, VHD_DYNAMIC_HEADER_SIZE, undefined, "VHD dynamic disk header"),
        headerOffset,
      );
      if (footer.diskType === VhdDiskType.differencing) {
        const parent = header.parentName ? ` "${header.parentName}"` : "";
        throw new UnsupportedFeatureError(
          `${file.path}: differencing VHD over parent${parent} is not supported: it names another file, and chains ` +
            `are not merged. Merge it into its parent first (Hyper-V "Edit Disk" → Merge, or qemu-img commit), ` +
            `then convert the parent`,
        );
      }
      const size = decideVhdSize(footer, choice);
      const map = await VhdBlockMap.load(file, header, size.size, declaredSize(size));
      return new VhdSource(file, located, size, header, map);
    });
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    checkDiskRange(this.file.path, offset, length, this.virtualSize);
    const out = readDestination(this.file.path, length, into);
    if (!this.map) return this.file.readExact(offset, length, out, "disk data");
    await readFileRuns(this.file, this.map.runs(offset, length), out, offset, "VHD block data");
    return out;
  }

  async *extents(offset = 0, length = this.virtualSize - offset): AsyncGenerator<Extent> {
    checkDiskRange(this.file.path, offset, length, this.virtualSize);
    if (length === 0) return;
    if (this.map) {
      for await (const run of this.map.runs(offset, length)) {
        yield { offset: run.offset, length: run.length, kind: run.kind };
      }
      return;
    }
    // A fixed disk's data is raw in the file, so the host filesystem's holes are its unallocated ranges.
    yield* fileExtents(this.holes, offset, offset, length, "unallocated");
  }

  async details(): Promise<ImageDetails> {
    const { footer, copies } = this.located;
    let allocated = 0;
    for await (const e of this.extents()) if (e.kind === "data") allocated += e.length;
    const formatSpecific: Record<string, string | number | boolean> = {
      diskType: diskTypeName(footer.diskType),
      creatorApp: fourCc(footer.creatorApp),
      creatorVersion: `${footer.creatorVersion >>> 16}.${footer.creatorVersion & 0xffff}`,
      creatorHostOs: fourCc(footer.creatorHostOs),
      sizeRule: this.size.rule,
      sizeRuleReason: this.size.reason,
      currentSize: footer.currentSize,
      originalSize: footer.originalSize,
      chsSize: this.size.chsSize,
      geometry: formatGeometry(footer.geometry),
      uniqueId: footer.uniqueId.toString("hex").replace(/^(.{8})(.{4})(.{4})(.{4})/, "$1-$2-$3-$4-"),
      created: new Date(VHD_EPOCH_MS + footer.timestamp * 1000).toISOString(),
      savedState: footer.savedState,
      footerCopies: copies,
    };
    const known = creatorName(footer.creatorApp);
    if (known) formatSpecific.creator = known;
    if (this.header && this.map) {
      formatSpecific.blockSize = this.header.blockSize;
      formatSpecific.maxTableEntries = this.header.maxTableEntries;
      formatSpecific.allocatedBlocks = this.map.allocatedBlocks;
    }
    // Every allocated block's bitmap was read by the walk above.
    const partial = this.map?.partialBlocks ?? 0;
    const warnings =
      partial > 0
        ? [
            `${partial} block(s) mark some of their sectors absent in their sector bitmaps: chromogenic reads those ` +
              "sectors as zeros, as the VHD specification has it; qemu-img ignores sector bitmaps and reads the " +
              "bytes stored there, so the two may read this disk differently",
          ]
        : [];
    return {
      format: this.format,
      virtualSize: this.virtualSize,
      actualSize: this.file.allocatedSize,
      allocatedBytes: allocated,
      ...(this.header ? { clusterSize: this.header.blockSize } : {}),
      formatSpecific,
      ...(warnings.length ? { warnings } : {}),
    };
  }

  close(): Promise<void> {
    return this.file.close();
  }
}

/**
 * The most data the disk may hold: its current size (a geometry-sized disk is smaller, and the sectors between
 * are the geometry's rounding, not lost data), or the size read when the user chose a larger geometry.
 */
function declaredSize(size: VhdSizeDecision): number {
  return Math.max(size.footerSize, size.size);
}

/**
 * Finds the footer to trust. Dynamic disks keep a copy at offset 0 whose type is dynamic or differencing; a fixed
 * disk's first sector is guest data (which could itself start with "conectix"), so its footer is the one at the
 * end. If a dynamic disk's copy at 0 is damaged, the footer at the end stands in for it, and the reverse.
 */
async function locateFooter(file: ImageInput): Promise<Located> {
  const path = file.path;
  if (file.size < VHD_FOOTER_SIZE) {
    throw new CorruptImageError(`${path}: ${file.size} bytes is too small for a VHD (the footer alone is 512)`);
  }
  const headBuf = await file.readExact(0, VHD_FOOTER_SIZE, undefined, "VHD footer copy");
  const tailBuf = await file.readExact(file.size - VHD_FOOTER_SIZE, VHD_FOOTER_SIZE, undefined, "VHD footer");
  const attempt = (buf: Buffer, where: string): VhdFooter | Error | null => {
    if (!hasFooterCookie(buf)) return null;
    try {
      return parseVhdFooter(path, buf, where);
    } catch (e) {
      return e as Error;
    }
  };
  const head = file.size >= 2 * VHD_FOOTER_SIZE ? attempt(headBuf, "footer copy at offset 0") : null;
  const tail = attempt(tailBuf, "footer at the end of the file");
  const sparse = (f: VhdFooter | Error | null): f is VhdFooter =>
    f !== null && !(f instanceof Error) && f.diskType !== VhdDiskType.fixed;
  if (sparse(head)) {
    if (tail === null || tail instanceof Error) return { footer: head, copies: "start only" };
    return { footer: head, copies: tailBuf.equals(headBuf) ? "both, identical" : "both, differing" };
  }
  if (tail !== null && !(tail instanceof Error)) {
    if (tail.diskType === VhdDiskType.fixed) return { footer: tail, copies: "end" };
    return { footer: tail, copies: "end only" };
  }
  const problem = [head, tail].find((f): f is Error => f instanceof Error);
  if (problem) throw problem;
  throw new CorruptImageError(`${path}: not a VHD: no "conectix" footer at the start or the end of the file`);
}
