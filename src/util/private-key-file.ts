/**
 * A private key file checked the way ssh checks one before using it: a regular file that no one but its owner
 * can read or write (no group or other permission bits). A key others can read is not a secret any more, and
 * one others can write may not be the key it was: refused, naming the file and its mode, never its content.
 */
import { stat } from "node:fs/promises";
import { UsageError } from "./errors.js";

export async function checkPrivateKeyFile(path: string, what: string): Promise<void> {
  const info = await stat(path).catch((e: NodeJS.ErrnoException) => {
    throw new UsageError(`${path}: cannot read ${what} (${e.code ?? e.message})`);
  });
  if (!info.isFile()) throw new UsageError(`${path}: ${what} is not a regular file`);
  if ((info.mode & 0o077) !== 0) {
    const mode = (info.mode & 0o777).toString(8).padStart(4, "0");
    throw new UsageError(
      `${path}: ${what} is readable or writable by others (mode ${mode}); refusing it as ssh does: chmod 600 ${path}`,
    );
  }
}
