import type { ImageInput } from "../inputs/image-input.js";
import { TAR_BLOCK, decodeTarHeader } from "./tar-header.js";

/*
 * Recognising an OVA costs one 512-byte read and no XML parser: imageInfo and convertFile, which take any
 * image, ask this first (engine/recognise-input.ts) and load the OVA reader (fast-xml-parser and all, a sixth of
 * the CLI's start-up) only for an OVA.
 */

/**
 * What a file's first bytes say about it as a tar archive: "ova" when they are a tar header whose member is an
 * .ovf descriptor (how an OVA is recognised), "tar" for any other valid tar header, undefined when they are not
 * a tar header. Format detection uses it too, to refuse a tar that is not an OVA.
 */
export function classifyTarHead(head: Buffer): "ova" | "tar" | undefined {
  if (head.length < TAR_BLOCK) return undefined;
  let header;
  try {
    header = decodeTarHeader(head.subarray(0, TAR_BLOCK), "tar header");
  } catch {
    return undefined;
  }
  if (header.name === "") return undefined;
  return header.type === "file" && /\.ovf$/i.test(header.name) ? "ova" : "tar";
}

/** True when an open input starts like an OVA (its first bytes are read, and stay buffered on a pipe). */
export async function startsLikeOva(input: ImageInput): Promise<boolean> {
  return classifyTarHead(await input.readPadded(0, TAR_BLOCK)) === "ova";
}
