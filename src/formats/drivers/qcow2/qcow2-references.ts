/**
 * Files a qcow2 image names besides itself: the backing file and the external data file. An image is hostile
 * until proven otherwise, and a name in its header must never make us open something the caller did not
 * choose (a backing file of /etc/shadow would leak it through the virtual disk). So a named file is opened
 * only if the caller listed its real path in `references.allowedPaths`; when the list is empty we refuse
 * without touching the filesystem at all.
 */
import { realpath } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import { ChromogenicError, CorruptImageError, ReferenceRefusedError, UnsupportedFeatureError } from "../../errors.js";
import type { ImageSource, OpenOptions } from "../../types.js";

/** qemu's own limit on backing chains is far deeper; 16 is plenty for real images and stops runaway chains. */
export const MAX_BACKING_CHAIN_DEPTH = 16;

/**
 * The real paths of the images that led to this open (outermost first), carried inside OpenOptions so that
 * a backing chain that loops back on itself, through any driver that passes its options on, is caught.
 * A registry-wide symbol, so other drivers opening references can share it.
 */
export const REFERENCE_CHAIN = Symbol.for("chromogenic.referenceChain");

export type ChainedOpenOptions = OpenOptions & { readonly [REFERENCE_CHAIN]?: readonly string[] };

export type ReferenceRole = "backing file" | "external data file";

/**
 * The real path of the file `name` (as recorded in the image at `imagePath`), if the caller allowed it;
 * throws ReferenceRefusedError otherwise. Relative names are relative to the image's folder, as in qemu.
 */
export async function resolveAllowedReference(
  imagePath: string,
  name: string,
  role: ReferenceRole,
  options: OpenOptions,
): Promise<string> {
  const lexical = isAbsolute(name) ? resolve(name) : resolve(dirname(imagePath), name);
  const allowed = options.references?.allowedPaths ?? [];
  const refuse = (): never => {
    throw new ReferenceRefusedError(
      `${imagePath}: the image refers to its ${role} "${name}" (${lexical}), which was not opened: an image may ` +
        `only make chromogenic read files the caller allows. To read through it, allow that path explicitly ` +
        `(references.allowedPaths).`,
    );
  };
  if (allowed.length === 0) return refuse();
  const real = await realpathOrNull(lexical);
  const allowedReal = await Promise.all(allowed.map(async (p) => (await realpathOrNull(resolve(p))) ?? resolve(p)));
  if (!allowedReal.includes(real ?? lexical)) return refuse();
  if (real === null) {
    throw new ChromogenicError(`${imagePath}: its ${role} "${name}" (${lexical}) does not exist`, "ENOENT");
  }
  return real;
}

async function realpathOrNull(path: string): Promise<string | null> {
  try {
    return await realpath(path);
  } catch {
    return null;
  }
}

/** Driver names chromogenic uses for formats qemu names differently in a backing_format extension. */
const QEMU_FORMAT_ALIASES: Readonly<Record<string, string>> = { vpc: "vhd" };

/**
 * Opens the backing image at `backingPath` (already allowed) with the same reference policy, after checking
 * the chain neither loops nor grows past MAX_BACKING_CHAIN_DEPTH. `selfPath` is the real path of the image
 * whose backing this is.
 */
export async function openBackingImage(
  imagePath: string,
  selfPath: string,
  backingPath: string,
  backingFormat: string | undefined,
  options: ChainedOpenOptions,
): Promise<ImageSource> {
  const chain = [...(options[REFERENCE_CHAIN] ?? []), selfPath];
  if (chain.includes(backingPath)) {
    throw new CorruptImageError(`${imagePath}: the backing chain loops back to ${backingPath}`);
  }
  if (chain.length >= MAX_BACKING_CHAIN_DEPTH) {
    throw new CorruptImageError(
      `${imagePath}: the backing chain is deeper than ${MAX_BACKING_CHAIN_DEPTH} images; refusing to follow it further`,
    );
  }
  // Imported lazily: the registry imports this driver, so a static import would be circular.
  const registry = await import("../../registry.js");
  let driver;
  if (backingFormat === undefined) {
    driver = await registry.detectFormat(backingPath);
  } else {
    const known = registry.listDrivers();
    driver =
      known.find((d) => d.name === backingFormat) ?? known.find((d) => d.name === QEMU_FORMAT_ALIASES[backingFormat]);
    if (!driver) {
      throw new UnsupportedFeatureError(
        `${imagePath}: its backing file ${backingPath} has format "${backingFormat}", which chromogenic cannot read`,
      );
    }
  }
  const backingOptions: ChainedOpenOptions = { references: options.references, [REFERENCE_CHAIN]: chain };
  return driver.open(backingPath, backingOptions);
}
