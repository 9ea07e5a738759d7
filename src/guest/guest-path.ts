import { lstat, readlink } from "node:fs/promises";
import { join } from "node:path";
import { ChromogenicError } from "../formats/errors.js";

/** A guest path that cannot be resolved safely (a symlink loop, or a component that is not a directory). */
export class GuestPathError extends ChromogenicError {
  constructor(message: string) {
    super(message, "EGUESTPATH");
  }
}

/** Linux's own limit on symlinks followed in one lookup. */
const MAX_SYMLINKS = 40;

export interface ResolveOptions {
  /** Follow a symlink in the last component too (reading a file), or not (removing or truncating the link). */
  readonly followLast?: boolean;
}

/**
 * Maps a path as the guest sees it to a host path under `guestRoot`, following guest symlinks the way the
 * guest's kernel would if `guestRoot` were `/`: an absolute target restarts at the guest root and `..` stops
 * at it. The result therefore never leaves the guest root, whatever the guest's links say — `/etc/os-release
 * -> /etc/shadow` reads the guest's shadow, never the host's. Components that do not exist are kept as they
 * are (the caller may be about to create them). The guest is not running, so nothing changes under us
 * between this walk and the caller's use of the path (other than the caller's own edits).
 */
export async function resolveGuestPath(
  guestRoot: string,
  guestPath: string,
  options: ResolveOptions = {},
): Promise<string> {
  const followLast = options.followLast ?? true;
  const resolved: string[] = [];
  let pending = split(guestPath);
  let followed = 0;
  while (pending.length) {
    const name = pending.shift()!;
    if (name === ".") continue;
    if (name === "..") {
      resolved.pop();
      continue;
    }
    const candidate = [...resolved, name];
    const host = join(guestRoot, ...candidate);
    const isLast = pending.length === 0;
    const st = await lstat(host).catch((e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT") return null;
      if (e.code === "ENOTDIR")
        throw new GuestPathError(`guest path ${guestPath}: ${candidate.join("/")} is not inside a directory`);
      throw e;
    });
    if (st?.isSymbolicLink() && (!isLast || followLast)) {
      if (++followed > MAX_SYMLINKS)
        throw new GuestPathError(`guest path ${guestPath}: too many levels of symbolic links`);
      const target = await readlink(host);
      if (target.startsWith("/")) resolved.length = 0;
      pending = [...split(target), ...pending];
      continue;
    }
    resolved.push(name);
  }
  return join(guestRoot, ...resolved);
}

function split(path: string): string[] {
  return path.split("/").filter((c) => c.length > 0);
}
