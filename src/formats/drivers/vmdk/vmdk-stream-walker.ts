/**
 * Reading a streamOptimized VMDK front to back, as it was written (VMware's Virtual Disk Format 5.0, the
 * stream-optimized compressed sparse extent), for an input that can be read only once in order (a pipe):
 *
 *   header | embedded descriptor | … the rest of the overhead …
 *   then markers, each starting a sector:
 *     a grain:    its first sector (u64), its compressed size (u32, not 0), the zlib stream, zero padding
 *     metadata:   a sector count (u64), 0 (u32), a type (u32), padding to the sector's end, then that many
 *                 sectors: a grain table, the grain directory, the footer (the header again), or, for the
 *                 end-of-stream marker, none
 *
 * A grain's marker alone says where its data belongs, so the grain tables and the directory that follow the
 * grains are skipped unread. Writers put grains in increasing order (ovftool, VMDKstream, qemu-img and
 * chromogenic do); a grain that goes back cannot be placed by a reader that cannot go back, and is refused.
 *
 * Where the stream ends matters. Writers that know they write a stream (VMware, VMDKstream, chromogenic) put
 * the grain directory at the end (the header says GD_AT_END) and close with an end-of-stream marker, so an
 * input that ends without one was cut short. qemu-img writes a seekable file instead: its grain directory and
 * tables sit in the overhead, filled in as the grains were written, and nothing marks the end; the number of
 * grains those tables list then tells a whole stream from a truncated one.
 */
import { CorruptImageError } from "../../errors.js";
import type { ImageInput } from "../../inputs/image-input.js";
import { LIMITS } from "../../limits.js";
import { GRAIN_MARKER_BYTES, maxCompressedGrainBytes } from "./vmdk-compressed-grains.js";
import { descriptorText } from "./vmdk-descriptor.js";
import {
  GTE_ZEROED,
  MARKER_END_OF_STREAM,
  MARKER_FOOTER,
  MARKER_GRAIN_DIRECTORY,
  MARKER_GRAIN_TABLE,
  SECTOR,
  hasMarkers,
  isCompressed,
  sparseGeometry,
  type SparseHeader,
} from "./vmdk-sparse-header.js";
import { parseStreamFooter } from "./vmdk-stream-footer.js";

/** A grain as met in the stream. */
export interface StreamGrain {
  /** Disk offset of the grain's first byte. */
  readonly offset: number;
  /** Its zlib stream, copied out of the input. */
  readonly compressed: Buffer;
  /** Where its marker is in the input, for messages. */
  readonly inputOffset: number;
}

/** True for a header whose grains carry markers and are compressed: a file that can be read in order. */
export function isStreamOptimized(header: SparseHeader): boolean {
  return isCompressed(header) && hasMarkers(header);
}

/** Most sectors of metadata a marker may announce: a grain directory is capped at LIMITS.maxTableBytes. */
const MAX_METADATA_SECTORS = LIMITS.maxTableBytes / SECTOR;

export class StreamOptimizedWalker {
  private readonly sector = Buffer.alloc(SECTOR);
  private readonly grainSize: number;
  /** Where the next marker starts in the input. */
  private position: number;
  /** The disk offset the next grain may start at, at the earliest: the end of the previous one. */
  private nextGrainOffset = 0;
  private grainsMet = 0;
  private ended = false;

  private constructor(
    private readonly input: ImageInput,
    readonly header: SparseHeader,
    /** The embedded descriptor's text, if the header points at one. */
    readonly descriptor: string | undefined,
    firstMarker: number,
    /** Grains the tables in the overhead list (a qemu-img file), or undefined when there are none to count. */
    private readonly grainsListed: number | undefined,
  ) {
    this.grainSize = header.grainSectors * SECTOR;
    this.position = firstMarker;
  }

  /**
   * Reads what comes before the first marker: the descriptor, and the grain tables when the overhead holds
   * them. `header` is the parsed first sector, and must be streamOptimized (isStreamOptimized).
   */
  static async open(input: ImageInput, header: SparseHeader): Promise<StreamOptimizedWalker> {
    let position = SECTOR;
    let descriptor: string | undefined;
    if (header.descriptorOffset > 0 && header.descriptorSectors > 0) {
      const at = header.descriptorOffset * SECTOR;
      const bytes = await input.readExact(at, header.descriptorSectors * SECTOR, undefined, "embedded descriptor");
      descriptor = descriptorText(bytes, input.path);
      position = Math.max(position, at + bytes.length);
    }
    const firstMarker = Math.max(position, header.overheadSectors * SECTOR);
    const listed = header.gdAtEnd ? undefined : await countListedGrains(input, header, position, firstMarker);
    return new StreamOptimizedWalker(input, header, descriptor, firstMarker, listed);
  }

  /** The next grain of the stream, or undefined once it has ended (checked for being whole). */
  async next(): Promise<StreamGrain | undefined> {
    while (!this.ended) {
      const at = this.position;
      const sector = await this.input.readPadded(at, SECTOR, this.sector);
      if (at >= this.input.size) {
        this.endOfInput();
        break;
      }
      const value = sector.readBigUInt64LE(0);
      const size = sector.readUInt32LE(8);
      if (size !== 0) return this.grain(at, sector, value, size);
      if (at + SECTOR > this.input.size) throw this.truncated(`in the middle of a marker at offset ${at}`);
      await this.metadata(at, sector.readUInt32LE(12), value);
    }
    return undefined;
  }

  private async grain(at: number, sector: Buffer, lba: bigint, size: number): Promise<StreamGrain> {
    const where = `${this.input.path}: the grain at stream offset ${at}`;
    const maxSize = maxCompressedGrainBytes(this.grainSize);
    if (size > maxSize) {
      throw new CorruptImageError(`${where}: compressed size ${size} is beyond ${maxSize} (twice the grain size)`);
    }
    const { capacity, grainSectors } = this.header;
    if (lba >= BigInt(capacity) || lba % BigInt(grainSectors) !== 0n) {
      throw new CorruptImageError(
        `${where}: its marker names sector ${lba}, which is not the start of a grain of the ${capacity}-sector disk`,
      );
    }
    const offset = Number(lba) * SECTOR;
    if (offset < this.nextGrainOffset) {
      throw new CorruptImageError(
        `${where} holds disk offset ${offset}, before the grain met ahead of it (up to ${this.nextGrainOffset}): ` +
          "an image read once in order cannot go back for it; save it to a file and read it from there",
      );
    }
    const compressed = Buffer.allocUnsafe(size);
    const inMarkerSector = Math.min(size, SECTOR - GRAIN_MARKER_BYTES);
    sector.copy(compressed, 0, GRAIN_MARKER_BYTES, GRAIN_MARKER_BYTES + inMarkerSector);
    const end = at + GRAIN_MARKER_BYTES + size;
    if (size > inMarkerSector) {
      await this.input.readPadded(at + SECTOR, size - inMarkerSector, compressed.subarray(inMarkerSector));
    }
    if (end > this.input.size) throw this.truncated(`in the middle of the grain at offset ${at}`);
    this.position = Math.ceil(end / SECTOR) * SECTOR;
    this.nextGrainOffset = offset + this.grainSize;
    this.grainsMet++;
    return { offset, compressed, inputOffset: at };
  }

  private async metadata(at: number, type: number, sectors: bigint): Promise<void> {
    if (sectors > BigInt(MAX_METADATA_SECTORS)) {
      throw new CorruptImageError(
        `${this.input.path}: the marker at stream offset ${at} announces ${sectors} sectors of metadata, beyond ` +
          `the ${MAX_METADATA_SECTORS} allowed`,
      );
    }
    const next = at + SECTOR + Number(sectors) * SECTOR;
    switch (type) {
      case MARKER_END_OF_STREAM:
        this.ended = true;
        if (this.grainsListed !== undefined && this.grainsMet !== this.grainsListed) {
          throw new CorruptImageError(
            `${this.input.path}: the grain tables list ${this.grainsListed} grains, but the stream holds ` +
              `${this.grainsMet} before its end-of-stream marker`,
          );
        }
        return;
      case MARKER_GRAIN_TABLE:
      case MARKER_GRAIN_DIRECTORY:
        // The grains' markers already placed every grain.
        this.position = next;
        return;
      case MARKER_FOOTER: {
        if (sectors === 0n) throw new CorruptImageError(`${this.input.path}: the footer marker at ${at} has no footer`);
        const footer = await this.input.readPadded(at + SECTOR, SECTOR, this.sector);
        if (at + 2 * SECTOR > this.input.size) throw this.truncated("in the middle of its footer");
        parseStreamFooter(footer, this.header, this.input.path);
        this.position = next;
        return;
      }
      default:
        throw new CorruptImageError(
          `${this.input.path}: unknown marker type ${type} at stream offset ${at} (grain table 1, grain directory ` +
            "2, footer 3 and end of stream 0 are known)",
        );
    }
  }

  /** The input ended where a marker should start: the end of a qemu-img file, or a stream cut short. */
  private endOfInput(): void {
    this.ended = true;
    if (this.header.gdAtEnd) throw this.truncated("without its footer and end-of-stream marker");
    if (this.grainsListed !== undefined && this.grainsMet < this.grainsListed) {
      throw this.truncated(`after ${this.grainsMet} of the ${this.grainsListed} grains its grain tables list`);
    }
  }

  private truncated(where: string): CorruptImageError {
    this.ended = true;
    return new CorruptImageError(
      `${this.input.path}: the streamOptimized VMDK ends after ${this.input.size} bytes, ${where}: it was cut ` +
        "short or not completely written",
    );
  }
}

/**
 * Grains listed by the grain tables a header locates in the overhead, between `from` (the end of what was
 * read) and `firstMarker`; undefined when the directory or a table lies elsewhere (reading it would mean going
 * back or skipping grains), since then the tables cannot be read in order before the grains.
 */
async function countListedGrains(
  input: ImageInput,
  header: SparseHeader,
  from: number,
  firstMarker: number,
): Promise<number | undefined> {
  const { gtCount, gtBytes } = sparseGeometry(header);
  const gdAt = header.gdOffset * SECTOR;
  const gdEnd = gdAt + gtCount * 4;
  if (header.gdOffset === 0 || gdAt < from || gdEnd > firstMarker) return undefined;
  const directory = await input.readExact(gdAt, gtCount * 4, undefined, "grain directory");
  const tables: number[] = [];
  for (let i = 0; i < gtCount; i++) {
    const sector = directory.readUInt32LE(i * 4);
    if (sector !== 0) tables.push(sector * SECTOR);
  }
  tables.sort((a, b) => a - b);
  if (tables.some((at) => at < gdEnd || at + gtBytes > firstMarker)) return undefined;
  let listed = 0;
  const table = Buffer.alloc(gtBytes);
  let previousEnd = 0;
  for (const at of tables) {
    // Two directory entries naming one table would count its grains twice.
    if (at < previousEnd) return undefined;
    previousEnd = at + gtBytes;
    await input.readExact(at, gtBytes, table, "grain table");
    for (let i = 0; i < gtBytes; i += 4) if (table.readUInt32LE(i) > GTE_ZEROED) listed++;
  }
  return listed;
}
