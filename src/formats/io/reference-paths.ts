/**
 * Deciding whether an image may make us open another file it names (a qcow2 backing or data file, the extents
 * a VMDK descriptor lists). An image is hostile until proven otherwise: a name in its metadata must never make
 * chromogenic read something the caller did not choose (an "extent" of /etc/shadow would leak it through the
 * virtual disk). Two things can allow a named file:
 *
 * - the caller's ReferencePolicy lists its real path (symlinks resolved on both sides), or
 * - the format itself keeps such files beside the image (a VMDK descriptor and its extents), and the rule
 *   `sameFolder` is asked for: then a relative name without `..` whose real path lies in the image's own
 *   folder (or below it) is allowed. Absolute names, `..` and symlinks leading out of the folder are not.
 *
 * Relative names are relative to the folder of the image as it was named (as in qemu), not of its real path.
 */
import { realpath } from "node:fs/promises";
import { dirname, isAbsolute, resolve, sep } from "node:path";
import { ChromogenicError, ReferenceRefusedError } from "../errors.js";
import type { ReferencePolicy } from "../types.js";

export interface ReferenceRules {
  /** Files in the image's own folder (or below it) are allowed without being listed in the policy. */
  readonly sameFolder?: boolean;
}

/**
 * The real path of the file `name`, as recorded in the image at `imagePath`, if the policy or the rules allow
 * it; throws ReferenceRefusedError otherwise, and a ChromogenicError with code ENOENT when an allowed file
 * does not exist. `role` names the reference in messages ("backing file", "extent", …). When nothing could
 * allow the file (empty policy, no folder rule) the filesystem is not touched at all.
 */
export async function resolveReferencePath(
  imagePath: string,
  name: string,
  role: string,
  policy: ReferencePolicy | undefined,
  rules: ReferenceRules = {},
): Promise<string> {
  const lexical = isAbsolute(name) ? resolve(name) : resolve(dirname(imagePath), name);
  const allowed = policy?.allowedPaths ?? [];
  const refuse = (why: string): never => {
    throw new ReferenceRefusedError(
      `${imagePath}: the image refers to its ${role} "${name}" (${lexical}), which was not opened: ${why}. ` +
        `An image may only make chromogenic read files the caller allows; to read through it, allow it with ` +
        `--allow-reference PATH (library: references.allowedPaths).`,
    );
  };
  if (allowed.length === 0 && !rules.sameFolder) return refuse("no referenced files are allowed");

  const real = await realpathOrNull(lexical);
  if (allowed.length > 0) {
    const allowedReal = await Promise.all(allowed.map(async (p) => (await realpathOrNull(resolve(p))) ?? resolve(p)));
    if (allowedReal.includes(real ?? lexical)) return existing(real);
  }
  if (!rules.sameFolder) return refuse("it is not in the allowed paths");

  if (isAbsolute(name)) return refuse("absolute paths are only followed when allowed explicitly");
  if (name.split(/[\\/]/).includes("..")) return refuse("names leading out of the image's folder (..) are refused");
  const folder = await realpathOrNull(dirname(resolve(imagePath)));
  if (folder === null) return refuse("the image's own folder cannot be resolved");
  if (real === null) {
    // Lexically inside the folder (no `..`, not absolute) and missing: say so rather than "refused".
    return existing(null);
  }
  if (real !== folder && !real.startsWith(folder.endsWith(sep) ? folder : folder + sep)) {
    return refuse(`it resolves to ${real}, outside the image's folder ${folder} (through a symbolic link)`);
  }
  return real;

  function existing(path: string | null): string {
    if (path === null) {
      throw new ChromogenicError(`${imagePath}: its ${role} "${name}" (${lexical}) does not exist`, "ENOENT");
    }
    return path;
  }
}

async function realpathOrNull(path: string): Promise<string | null> {
  try {
    return await realpath(path);
  } catch {
    return null;
  }
}
