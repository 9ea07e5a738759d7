/**
 * What a download is verified against: Glance's multihash (`os_hash_algo` + `os_hash_value`, API ≥ 2.7,
 * sha512 by default) when present, else the legacy MD5 `checksum`. The hasher is fed as bytes arrive, so
 * verification costs no second read.
 */
import { createHash, type Hash } from "node:crypto";
import type { GlanceImage } from "./glance-image.js";

export interface ExpectedHash {
  readonly algorithm: string;
  readonly value: string;
}

export function expectedHash(image: GlanceImage): ExpectedHash | undefined {
  if (image.os_hash_algo && image.os_hash_value) return { algorithm: image.os_hash_algo, value: image.os_hash_value };
  if (image.checksum) return { algorithm: "md5", value: image.checksum };
  return undefined;
}

export function createImageHasher(expected: ExpectedHash): Hash {
  return createHash(expected.algorithm);
}
