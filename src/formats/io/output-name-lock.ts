/**
 * One writer per output name. An output is written under no name (or a temporary one) and given its name only
 * when complete, so two jobs writing the same new path would never meet on a file: the second would silently
 * replace the first one's output. Each writer therefore locks the name itself: a shared lock, on its folder, on
 * one byte chosen by the name (far above the bytes anyone else locks), then a look for another holder of that byte
 * (image-locks.ts has the scheme). The lock goes when the folder's handle is closed, or the process ends, so a
 * killed job leaves nothing to clean up.
 */
import { constants } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { ImageInUseError } from "../errors.js";
import { lockBytes, warnUnlocked } from "./image-locks.js";
import { describeHolders, lockHolders } from "./lock-holders.js";

/** Name bytes start here: above qemu's (100-203) and libvirt's (0), below 2^53. */
const NAME_BYTES = 2 ** 32;

/**
 * Locks the name `path` for writing; throws ImageInUseError naming the process when another writer holds it.
 * Close the returned handle to release it. A folder this user may write in but not read (mode -wx) cannot be
 * opened to hold the lock: then a warning says the name is not locked, and undefined is returned.
 */
export async function lockOutputName(path: string): Promise<FileHandle | undefined> {
  let folder: FileHandle;
  try {
    folder = await open(dirname(path), constants.O_RDONLY | constants.O_DIRECTORY);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EACCES") throw e;
    warnUnlocked(`the folder ${dirname(path)} cannot be read, so the name ${basename(path)} cannot be locked in it`);
    return undefined;
  }
  try {
    const byte = NAME_BYTES + nameHash(basename(path));
    const conflict = await lockBytes(folder, dirname(path), [byte], [byte]);
    if (conflict !== undefined) {
      const holders = describeHolders(await lockHolders(folder, byte));
      throw new ImageInUseError(`${path} is being written by ${holders}`);
    }
    return folder;
  } catch (e) {
    await folder.close();
    throw e;
  }
}

/**
 * A 48-bit hash of a file name (two 24-bit halves of FNV-1a with different offsets): two names of one folder
 * share a byte with odds of one in 2^48, which would refuse a job for a name it does not share.
 */
function nameHash(name: string): number {
  const bytes = Buffer.from(name, "utf8");
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (const byte of bytes) {
    a = Math.imul(a ^ byte, 0x01000193) >>> 0;
    b = Math.imul(b ^ byte, 0x01000193) >>> 0;
  }
  return (a >>> 8) * 2 ** 24 + (b >>> 8);
}
