/**
 * The names a bundle's files may have: plain names in the bundle's own folder or prefix. A manifest is read from
 * wherever the user got it, so a part named `../../etc/passwd` or `/dev/sda` must never be opened.
 */
import { CorruptImageError } from "../errors.js";

const MAX_NAME_LENGTH = 255;

/** Returns `name` when it is a plain file name, else throws naming `where`. */
export function checkBundleFileName(name: string, where: string): string {
  if (
    name.length === 0 ||
    name.length > MAX_NAME_LENGTH ||
    name.includes("/") ||
    name.includes("\\") ||
    name.includes("\0") ||
    name === "." ||
    name.includes("..") ||
    // Control characters have no place in a part name and would garble messages.
    // eslint-disable-next-line no-control-regex -- control characters are what the pattern looks for
    /[\x00-\x1f\x7f]/.test(name)
  ) {
    throw new CorruptImageError(`${where}: "${name.slice(0, 80)}" is not a plain file name for a bundle file`);
  }
  return name;
}
