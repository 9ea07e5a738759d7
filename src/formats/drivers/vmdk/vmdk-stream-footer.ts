/**
 * The end of a streamOptimized file. A stream writer cannot know where its grain directory will be when it
 * writes the header, so the header says GD_AT_END and the real header, the footer, closes the file:
 *
 *   … grains and grain tables … | GD marker | GD | footer marker | footer (a header) | end-of-stream marker
 *
 * The last three sectors are fixed, so a reader finds the footer at (file size − 1024) without scanning. A file
 * cut short (a download or a pipe that stopped) has grain data there instead, and is refused with that said.
 */
import { CorruptImageError } from "../../errors.js";
import type { ImageInput } from "../../inputs/image-input.js";
import {
  MARKER_END_OF_STREAM,
  MARKER_FOOTER,
  SECTOR,
  SPARSE_MAGIC,
  parseSparseHeader,
  type SparseHeader,
} from "./vmdk-sparse-header.js";

/** Reads and checks the footer of a streamOptimized file whose header has gdOffset = GD_AT_END. */
export async function readStreamFooter(file: ImageInput, header: SparseHeader): Promise<SparseHeader> {
  const truncated = (what: string) =>
    new CorruptImageError(
      `${file.path}: streamOptimized image has no valid footer (${what}): the file is truncated or was not ` +
        `completely written`,
    );
  if (file.size < 4 * SECTOR || file.size % SECTOR !== 0) throw truncated(`size ${file.size} is not whole sectors`);
  const tail = await file.readExact(file.size - 3 * SECTOR, 3 * SECTOR, undefined, "stream footer");
  const footerMarker = tail.subarray(0, SECTOR);
  const footer = tail.subarray(SECTOR, 2 * SECTOR);
  const endMarker = tail.subarray(2 * SECTOR);
  if (footerMarker.readUInt32LE(8) !== 0 || footerMarker.readUInt32LE(12) !== MARKER_FOOTER) {
    throw truncated("no footer marker 1536 bytes before the end");
  }
  if (footer.readUInt32LE(0) !== SPARSE_MAGIC) throw truncated("no header copy 1024 bytes before the end");
  if (
    endMarker.readBigUInt64LE(0) !== 0n ||
    endMarker.readUInt32LE(8) !== 0 ||
    endMarker.readUInt32LE(12) !== MARKER_END_OF_STREAM
  ) {
    throw truncated("no end-of-stream marker in the last sector");
  }
  return parseStreamFooter(footer, header, file.path);
}

/**
 * The footer sector (a copy of the header, now locating the grain directory), checked against the header:
 * the two must describe the same disk.
 */
export function parseStreamFooter(footer: Buffer, header: SparseHeader, path: string): SparseHeader {
  const parsed = parseSparseHeader(footer, `${path} (footer)`);
  if (parsed.gdAtEnd) throw new CorruptImageError(`${path}: the stream footer does not locate the grain directory`);
  if (
    parsed.capacity !== header.capacity ||
    parsed.grainSectors !== header.grainSectors ||
    parsed.gtesPerGt !== header.gtesPerGt ||
    parsed.compressAlgorithm !== header.compressAlgorithm
  ) {
    throw new CorruptImageError(
      `${path}: the stream footer disagrees with the header (capacity, grain size, table size or compression)`,
    );
  }
  return parsed;
}
