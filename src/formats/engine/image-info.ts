import type { ImageDetails, OpenOptions } from "../types.js";
import { openImage, type ImageLocation } from "./open-image.js";
import { locationForMessages } from "../inputs/open-input.js";

/** What `chromogenic info` reports: the driver's details, with allocated bytes from the map if it gave none. */
export async function imageInfo(
  location: ImageLocation,
  options: OpenOptions = {},
): Promise<ImageDetails & { path: string }> {
  const path = typeof location === "string" ? locationForMessages(location) : location.path;
  const { source } = await openImage(location, options);
  try {
    const details = await source.details();
    let allocatedBytes = details.allocatedBytes;
    if (allocatedBytes === undefined) {
      allocatedBytes = 0;
      for await (const e of source.extents()) if (e.kind === "data") allocatedBytes += e.length;
    }
    return { path, ...details, allocatedBytes };
  } finally {
    await source.close();
  }
}
