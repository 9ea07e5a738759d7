/**
 * The check made before any byte moves: the temporary space a plan needs against the space free where it
 * would go (statfs), so a job that cannot finish stops at once with both numbers, instead of after an hour
 * of downloading with a full disk.
 */
import { statfs } from "node:fs/promises";
import { ChromogenicError } from "../formats/errors.js";
import { formatBytes } from "../util/human.js";

export class InsufficientSpaceError extends ChromogenicError {
  constructor(
    message: string,
    readonly neededBytes: number,
    readonly freeBytes: number,
    readonly path: string,
  ) {
    super(message, "ENOSPC");
  }
}

/** Bytes an unprivileged writer can still use in the filesystem holding `path`. */
export async function freeBytes(path: string): Promise<number> {
  const s = await statfs(path);
  return s.bavail * s.bsize;
}

/** Headroom over the estimate: filesystem metadata, a format's tables, estimates that run a little short. */
const MARGIN = 1.02;
const MARGIN_BYTES = 16 * 2 ** 20;

export interface SpaceNeed {
  readonly path: string;
  readonly bytes: number;
  /** What the space is for, in the message. */
  readonly what: string;
}

/** Throws InsufficientSpaceError naming the first need that does not fit. Needs in one filesystem add up. */
export async function checkSpace(needs: readonly SpaceNeed[]): Promise<{ path: string; free: number }[]> {
  const byFs = new Map<number, { path: string; bytes: number; what: string[]; free: number }>();
  for (const need of needs) {
    if (need.bytes <= 0) continue;
    const s = await statfs(need.path);
    // Filesystems are told apart by their id fields as Node exposes them (type + total blocks + files).
    const key = s.type * 1e6 + s.blocks + s.files;
    const entry = byFs.get(key) ?? { path: need.path, bytes: 0, what: [], free: s.bavail * s.bsize };
    entry.bytes += need.bytes;
    entry.what.push(need.what);
    byFs.set(key, entry);
  }
  const out: { path: string; free: number }[] = [];
  for (const e of byFs.values()) {
    const needed = Math.ceil(e.bytes * MARGIN) + MARGIN_BYTES;
    if (needed > e.free) {
      throw new InsufficientSpaceError(
        `not enough space in ${e.path}: this job needs ${formatBytes(needed)} (${needed} bytes) there for ` +
          `${e.what.join(" and ")}, but only ${formatBytes(e.free)} (${e.free} bytes) are free; ` +
          "free some space or choose another --work-dir",
        needed,
        e.free,
        e.path,
      );
    }
    out.push({ path: e.path, free: e.free });
  }
  return out;
}
