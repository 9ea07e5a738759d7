import { loadNativeAddon } from "../../util/native-addon.js";
import type { Extent, ExtentKind } from "../types.js";

/**
 * lseek(SEEK_DATA / SEEK_HOLE) through the small native addon in native/fs-extents.c (Node's fs has no lseek).
 * When the addon is not built, or the filesystem answers EINVAL, callers fall back to reading and zero detection.
 */
interface FsExtentsAddon {
  seekData(fd: number, offset: number): number;
  seekHole(fd: number, offset: number): number;
}

function load(): FsExtentsAddon | null {
  return loadNativeAddon<FsExtentsAddon>("fs-extents");
}

/** True when the SEEK_DATA addon is built and loads (whether a given filesystem supports it is another matter). */
export function seekDataAddonLoaded(): boolean {
  return load() !== null;
}

export interface HoleFinder {
  /** Start of the next data at or after `offset`, or -1 if only a hole follows. */
  nextData(offset: number): number;
  /** Start of the next hole at or after `offset` (end of file counts as a hole). */
  nextHole(offset: number): number;
}

/** A hole finder for the open file, or null when SEEK_DATA/SEEK_HOLE cannot be used here. */
export function holeFinder(fd: number): HoleFinder | null {
  const native = load();
  if (!native) return null;
  try {
    native.seekHole(fd, 0);
  } catch {
    return null; // EINVAL: the filesystem does not support it
  }
  return {
    nextData: (offset) => native.seekData(fd, offset),
    nextHole: (offset) => native.seekHole(fd, offset),
  };
}

/**
 * The allocation map of a stretch of a disk stored as plain bytes in a file: `length` bytes at file offset
 * `fileStart`, which are the disk's bytes from `diskStart` on. The file's holes are reported as `holeKind`;
 * without a hole finder (see holeFinder) the whole stretch is data. Nothing is yielded for an empty stretch.
 */
export function* fileExtents(
  holes: HoleFinder | null,
  fileStart: number,
  diskStart: number,
  length: number,
  holeKind: ExtentKind,
): Generator<Extent> {
  if (length <= 0) return;
  if (!holes) {
    yield { offset: diskStart, length, kind: "data" };
    return;
  }
  const end = fileStart + length;
  const toDisk = (filePos: number) => diskStart + (filePos - fileStart);
  let pos = fileStart;
  while (pos < end) {
    const next = holes.nextData(pos);
    const dataStart = next < 0 ? end : Math.min(end, Math.max(pos, next));
    if (dataStart > pos) yield { offset: toDisk(pos), length: dataStart - pos, kind: holeKind };
    if (dataStart >= end) break;
    const holeStart = Math.min(holes.nextHole(dataStart), end);
    yield { offset: toDisk(dataStart), length: holeStart - dataStart, kind: "data" };
    pos = holeStart;
  }
}

export function seekDataAvailable(): boolean {
  return load() !== null;
}
