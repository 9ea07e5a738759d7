/**
 * The OVF manifest (.mf): one line per file of the package, `SHA256(name)= hex`. The spacing is exact on
 * purpose: vSphere and Workstation have rejected manifests written as "SHA256 (name) = hex"
 * (home-assistant/operating-system#826), so that is the only form written; reading is lenient about spaces.
 * SHA1, SHA256 and SHA512 are what DSP0243 and the importers know; which one a product accepts varies
 * (see ova-targets.ts), hence the choice.
 */
import { createHash, type Hash } from "node:crypto";
import { CorruptImageError } from "../errors.js";

export type ManifestAlgorithm = "sha1" | "sha256" | "sha512";

export const MANIFEST_ALGORITHMS: readonly ManifestAlgorithm[] = ["sha1", "sha256", "sha512"];

export interface ManifestEntry {
  readonly name: string;
  readonly algorithm: ManifestAlgorithm;
  /** Lowercase hex digest. */
  readonly digest: string;
}

const DIGEST_HEX_LENGTH: Record<ManifestAlgorithm, number> = { sha1: 40, sha256: 64, sha512: 128 };

/** A running digest for one file, fed while the file's bytes stream past. */
export function newDigest(algorithm: ManifestAlgorithm): Hash {
  return createHash(algorithm);
}

export function formatManifestLine(entry: ManifestEntry): string {
  return `${entry.algorithm.toUpperCase()}(${entry.name})= ${entry.digest}\n`;
}

export function formatManifest(entries: readonly ManifestEntry[]): string {
  return entries.map(formatManifestLine).join("");
}

/** Largest manifest read: a line per package file, so a few KiB in practice. */
export const MAX_MANIFEST_BYTES = 1 * 2 ** 20;

/**
 * Parses a manifest, refusing lines that are not digests (a manifest that says nothing verifiable must not
 * pass for a verified one). Blank lines are skipped; "SHA2-256" is not a DSP0243 name and is refused.
 */
export function parseManifest(text: string, where: string): ManifestEntry[] {
  const entries: ManifestEntry[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === "") continue;
    const m = /^(SHA1|SHA256|SHA512)\s*\((.+)\)\s*=\s*([0-9a-fA-F]+)$/i.exec(line);
    if (!m) throw new CorruptImageError(`${where}: manifest line ${i + 1} is not "ALGORITHM(file)= digest": ${line}`);
    const algorithm = m[1]!.toLowerCase() as ManifestAlgorithm;
    const digest = m[3]!.toLowerCase();
    if (digest.length !== DIGEST_HEX_LENGTH[algorithm]) {
      throw new CorruptImageError(
        `${where}: manifest line ${i + 1}: ${algorithm} digest has ${digest.length} hex digits`,
      );
    }
    entries.push({ name: m[2]!, algorithm, digest });
  }
  return entries;
}
