import type { ImageDetails, OpenOptions } from "../types.js";
import { openImage } from "./open-image.js";
import { locationForMessages } from "../inputs/open-input.js";
import { withForceShare } from "../io/force-share.js";

export interface ImageInfoOptions extends OpenOptions {
  /** Read the image even while another process writes it, taking no lock (qemu-img info -U). */
  readonly forceShare?: boolean;
}

/** What `chromogenic info` reports: the driver's details, with allocated bytes from the map if it gave none. */
export async function imageInfo(
  path: string,
  options: ImageInfoOptions = {},
): Promise<ImageDetails & { path: string }> {
  return withForceShare(options.forceShare, async () => {
    const { source } = await openImage(path, options);
    try {
      const details = await source.details();
      let allocatedBytes = details.allocatedBytes;
      if (allocatedBytes === undefined) {
        allocatedBytes = 0;
        for await (const e of source.extents()) if (e.kind === "data") allocatedBytes += e.length;
      }
      return { path: locationForMessages(path), ...details, allocatedBytes };
    } finally {
      await source.close();
    }
  });
}
