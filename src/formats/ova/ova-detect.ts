import { open } from "node:fs/promises";
import { TAR_BLOCK, decodeTarHeader } from "./tar-header.js";

/*
 * Recognising an OVA costs one 512-byte read and no XML parser: commands that take any image (convert, info)
 * ask this first and load the OVA reader (fast-xml-parser and all, a sixth of the CLI's start-up) only for an
 * OVA.
 */

/** True when the file starts with a tar header whose member is an .ovf descriptor: how an OVA is recognised. */
export async function looksLikeOva(path: string): Promise<boolean> {
  let handle;
  try {
    handle = await open(path, "r");
  } catch {
    return false;
  }
  try {
    const block = Buffer.alloc(TAR_BLOCK);
    const { bytesRead } = await handle.read(block, 0, TAR_BLOCK, 0);
    if (bytesRead < TAR_BLOCK) return false;
    try {
      const h = decodeTarHeader(block, path);
      return h.type === "file" && /\.ovf$/i.test(h.name);
    } catch {
      return false;
    }
  } finally {
    await handle.close();
  }
}
