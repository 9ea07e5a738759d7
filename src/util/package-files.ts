import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Files that ship beside the compiled code (native addons, cleaning profiles), found from the package's root
 * rather than by a fixed number of `../` from one module: the same code runs from dist/src/… (the library,
 * the tests) and from the CLI's single-file bundle in dist/cli/, which sit at different depths.
 */
let root: string | undefined;

/** The directory holding chromogenic's package.json, searched upwards from this module. */
export function packageRoot(): string {
  if (root !== undefined) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest) && isChromogenic(manifest)) return (root = dir);
    const parent = dirname(dir);
    if (parent === dir) throw new Error("chromogenic's package.json was not found above its code");
    dir = parent;
  }
}

/** `relative` (e.g. "profiles/") inside the package. */
export function packageFile(relative: string): string {
  return join(packageRoot(), relative);
}

function isChromogenic(manifest: string): boolean {
  try {
    return (JSON.parse(readFileSync(manifest, "utf8")) as { name?: unknown }).name === "chromogenic";
  } catch {
    return false;
  }
}
