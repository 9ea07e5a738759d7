import type { ImageDetails } from "../types.js";
import type { OvaInfo } from "../ova/ova-info.js";
import { openImage, type ImageLocation, type OpenImageOptions } from "./open-image.js";
import { recogniseInput } from "./recognise-input.js";
import { locationForMessages } from "../inputs/open-input.js";
import { withForceShare } from "../io/force-share.js";

export type { OvaInfo } from "../ova/ova-info.js";

/** A disk image's details: the driver's, with allocated bytes counted from the map when it gave none. */
export interface DiskImageInfo extends ImageDetails {
  readonly kind: "disk";
  /** The image as named (a URL without its query string). */
  readonly path: string;
  readonly allocatedBytes: number;
}

/** What `chromogenic info` reports: a disk image's details, or an OVA's appliance (`kind` tells which). */
export type ImageInfo = DiskImageInfo | OvaInfo;

export interface ImageInfoOptions extends OpenImageOptions {
  /** Read the image even while another process writes it, taking no lock (qemu-img info -U). */
  readonly forceShare?: boolean;
}

/**
 * Describes an image: an OVA is recognised as the CLI does (from its first tar header, unless `format` names
 * the input's format) and shown as an appliance; anything else is opened as a disk image.
 */
export async function imageInfo(location: ImageLocation, options: ImageInfoOptions = {}): Promise<ImageInfo> {
  return withForceShare(options.forceShare, () => describe(location, options));
}

async function describe(location: ImageLocation, options: OpenImageOptions): Promise<ImageInfo> {
  const path = typeof location === "string" ? locationForMessages(location) : location.path;
  const recognised = await recogniseInput(location, options);
  if (recognised.kind === "appliance") {
    // Loaded only for an OVA: the reader brings an XML parser every other image does without.
    const { ovaInfo } = await import("../ova/ova-info.js");
    return ovaInfo(recognised.ova);
  }
  // As qemu-img info: the image's own metadata, its backing file named but not opened (nor required to exist).
  const references = { allowedPaths: options.references?.allowedPaths ?? [], parents: "name-only" as const };
  const { source } = await openImage(recognised.input, { ...options, references });
  try {
    const details = await source.details();
    let allocatedBytes = details.allocatedBytes;
    if (allocatedBytes === undefined) {
      allocatedBytes = 0;
      for await (const e of source.extents()) if (e.kind === "data") allocatedBytes += e.length;
    }
    return { kind: "disk", path, ...details, allocatedBytes };
  } finally {
    await source.close();
  }
}
