/**
 * Walks every entry of an initramfs image as the kernel would unpack it: NUL padding skipped, uncompressed cpio
 * archives one after another (the early microcode archive comes first on most distributions), then a
 * compressed part whose decompressed bytes are cpio archives again. A zstd part ends where its frame ends, as
 * in the kernel, and what follows it (an archive appended later, another compressed part) is read too. Entries are seen as they stream past; the
 * data is never stored beyond what `visit` asks to keep.
 */
import { CorruptImageError } from "../../../formats/errors.js";
import { readPieces, type BoundedFile } from "../bounded-file.js";
import { CpioScanner, type CpioEntry } from "./cpio-scanner.js";
import { compressionOf, decompress, DecompressionError } from "./decompress.js";
import { zstdFrameEnd } from "./zstd-frame.js";

/** Decompressed bytes beyond this are a bomb, not an initramfs (Debian's unpack to about 200 MB). */
export const MAX_UNPACKED_BYTES = 4 * 2 ** 30;

export interface InitramfsScan {
  /** The parts in order: "cpio" for an uncompressed archive, the compression's name ("zstd") for the rest. */
  readonly parts: readonly string[];
  readonly entries: number;
  /**
   * Set when the compressed part's decompressor refused bytes after its last complete archive (zstd and lz4
   * refuse NUL padding there): what it said. The entries before it were all read.
   */
  readonly trailing?: string;
}

export interface ScanVisitor {
  /** Return true to have the entry's data (small files only) passed to `captured`. */
  readonly visit: (entry: CpioEntry) => boolean;
  readonly captured?: (entry: CpioEntry, data: Buffer) => void;
}

/** The offset of the first non-NUL byte at or after `from`, or the file's size. */
async function skipNuls(file: BoundedFile, from: number): Promise<number> {
  let at = from;
  for await (const piece of readPieces(file, from, 64 * 1024)) {
    let i = 0;
    while (i < piece.length && piece[i] === 0) i++;
    at += i;
    if (i < piece.length) break;
  }
  return at;
}

export async function scanInitramfs(file: BoundedFile, visitor: ScanVisitor): Promise<InitramfsScan> {
  const parts: string[] = [];
  let entries = 0;
  let offset = 0;
  for (;;) {
    offset = await skipNuls(file, offset);
    if (offset >= file.size) break;
    const head = Buffer.alloc(6);
    await file.handle.read(head, 0, 6, offset);
    if (head.toString("latin1", 0, 4) === "0707") {
      const scanner = new CpioScanner(`${file.name} (archive at byte ${offset})`, {
        ...visitor,
        stopAfterArchive: true,
      });
      for await (const piece of readPieces(file, offset)) {
        offset += scanner.feed(piece);
        if (scanner.stopped) break;
      }
      scanner.finish();
      entries += scanner.entries;
      parts.push("cpio");
      continue;
    }
    const compression = compressionOf(head);
    if (!compression)
      throw new CorruptImageError(
        `${file.name}: byte ${offset} starts neither a cpio archive nor a compressed one (${head.toString("hex")})`,
      );
    const where = `${file.name} (${compression.name}-compressed part from byte ${offset})`;
    const scanner = new CpioScanner(where, visitor);
    parts.push(compression.name);
    // The kernel's zstd decompressor stops at the end of the frame; the others read to the end of the file.
    const end = compression.name === "zstd" ? await zstdFrameEnd(file, offset) : file.size;
    let unpacked = 0;
    let trailing: string | undefined;
    try {
      for await (const chunk of decompress(compression, readPieces(file, offset, 2 ** 20, end))) {
        unpacked += chunk.length;
        if (unpacked > MAX_UNPACKED_BYTES)
          throw new CorruptImageError(`${where}: unpacks to more than ${MAX_UNPACKED_BYTES} bytes`);
        scanner.feed(chunk);
      }
    } catch (e) {
      if (!(e instanceof DecompressionError)) throw e;
      if (!scanner.atBoundary) throw new CorruptImageError(`${where}: ${e.message}`);
      trailing = e.message;
    }
    scanner.finish();
    entries += scanner.entries;
    if (end < file.size && trailing === undefined) {
      offset = end;
      continue;
    }
    return { parts, entries, ...(trailing !== undefined && { trailing }) };
  }
  if (!parts.length) throw new CorruptImageError(`${file.name}: is empty (only NUL bytes)`);
  return { parts, entries };
}
