/**
 * Opening a qcow2 image's backing image, once its path has passed the reference policy (io/reference-paths):
 * through whichever driver reads its format, with the same policy, and never into a chain that loops back on
 * itself or grows without bound. Other formats refuse parent images (VMDK delta disks, differencing VHD and
 * VHDX, VDI snapshots), so this is qcow2's alone; REFERENCE_CHAIN is registry-wide so a driver that starts
 * following parents can share it.
 */
import { CorruptImageError, UnsupportedFeatureError } from "../../errors.js";
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
