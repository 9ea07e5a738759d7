/**
 * Copies a host file (the caller's external kernel or ramdisk) into the guest: the guest folder is found
 * through the guest-root resolver (its links followed inside the guest only), the copy is written under a
 * temporary name created exclusively and without following links, and renamed into place only once complete —
 * so a failure leaves nothing half-written under the final name.
 */
import { constants } from "node:fs";
import { lstat, mkdir, open, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { GuestPathError, resolveGuestPath } from "../../guest/guest-path.js";
import { readPieces, type BoundedFile } from "./bounded-file.js";
import { kindOf } from "../cleaning/guest-tree.js";

export type InstallOutcome =
  /** Copied (or, in a dry run, would be). */
  | "installed"
  /** The guest already has this very file there. */
  | "identical";

async function sameContent(a: BoundedFile, path: string): Promise<boolean> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.size !== a.size) return false;
    let at = 0;
    for await (const piece of readPieces(a, 0)) {
      const other = Buffer.alloc(piece.length);
      const { bytesRead } = await fh.read(other, 0, other.length, at);
      if (bytesRead !== piece.length || !other.equals(piece)) return false;
      at += piece.length;
    }
    return true;
  } finally {
    await fh.close();
  }
}

/**
 * Installs `source` at `guestPath` with `mode`. A different file already there is a GuestPathError (it is not
 * ours to replace), as is a guest folder that is not a folder.
 */
export async function installHostFile(
  root: string,
  source: BoundedFile,
  guestPath: string,
  mode: number,
  dryRun: boolean,
): Promise<InstallOutcome> {
  const folder = await resolveGuestPath(root, dirname(guestPath), { followLast: true });
  const folderStat = await lstat(folder).catch(() => null);
  if (folderStat && !folderStat.isDirectory())
    throw new GuestPathError(`guest path ${dirname(guestPath)}: is a ${kindOf(folderStat)}, not a folder`);
  const target = join(folder, basename(guestPath));
  const existing = await lstat(target).catch(() => null);
  if (existing) {
    if (existing.isFile() && (await sameContent(source, target))) return "identical";
    throw new GuestPathError(`guest path ${guestPath}: already exists (a ${kindOf(existing)} with other content)`);
  }
  if (dryRun) return "installed";
  if (!folderStat) await mkdir(folder, { recursive: true, mode: 0o755 });
  const temporary = join(folder, `.${basename(guestPath)}.chromogenic-${process.pid}`);
  const out = await open(
    temporary,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW | constants.O_NONBLOCK,
    mode,
  );
  try {
    let at = 0;
    for await (const piece of readPieces(source, 0)) {
      await out.write(piece, 0, piece.length, at);
      at += piece.length;
    }
    await out.chmod(mode);
    await out.sync();
    await out.close();
    await rename(temporary, target);
  } catch (e) {
    await out.close().catch(() => undefined);
    await unlink(temporary).catch(() => undefined);
    throw e;
  }
  return "installed";
}
