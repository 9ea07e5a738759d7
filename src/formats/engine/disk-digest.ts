import { createHash } from "node:crypto";
import { openImage } from "./open-image.js";
import type { OpenOptions } from "../types.js";

/** SHA-256 of the guest-visible disk (not of the file), so images of different formats can be compared. */
export async function diskDigest(path: string, options: OpenOptions = {}): Promise<string> {
  const { source } = await openImage(path, options);
  try {
    const hash = createHash("sha256");
    const chunk = 4 * 2 ** 20;
    for (let pos = 0; pos < source.virtualSize; pos += chunk) {
      hash.update(await source.read(pos, Math.min(chunk, source.virtualSize - pos)));
    }
    return hash.digest("hex");
  } finally {
    await source.close();
  }
}
