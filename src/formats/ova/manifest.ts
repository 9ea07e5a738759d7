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

export interface ParsedManifest {
  readonly entries: readonly ManifestEntry[];
  /** Lines that are not digests, skipped (1-based line number and text). */
  readonly ignoredLines: readonly { readonly line: number; readonly text: string }[];
}

/**
 * Parses a manifest as virt-v2v and ovftool read them: digest lines are taken, a line that is not one is
 * skipped and reported (producers add comments, blank or garbled lines), and the caller warns about it. A
 * manifest in which no line is a digest is refused: it is not a manifest this reader understands, and
 * reading it as one that lists nothing would turn every check into a warning. A digest of the wrong length
 * for its algorithm, or two lines giving one file different digests, is an error: that file could never
 * verify. "SHA2-256" is not a DSP0243 name and is skipped like any other unknown line.
 */
export function parseManifest(text: string, where: string): ParsedManifest {
  const entries = new Map<string, ManifestEntry>();
  const ignoredLines: { line: number; text: string }[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === "") continue;
    const m = /^(SHA1|SHA256|SHA512)\s*\((.+)\)\s*=\s*([0-9a-fA-F]+)$/i.exec(line);
    if (!m) {
      ignoredLines.push({ line: i + 1, text: line });
      continue;
    }
    const algorithm = m[1]!.toLowerCase() as ManifestAlgorithm;
    const digest = m[3]!.toLowerCase();
    if (digest.length !== DIGEST_HEX_LENGTH[algorithm]) {
      throw new CorruptImageError(
        `${where}: manifest line ${i + 1}: ${algorithm} digest has ${digest.length} hex digits`,
      );
    }
    const entry: ManifestEntry = { name: m[2]!, algorithm, digest };
    const earlier = entries.get(entry.name);
    if (earlier && (earlier.algorithm !== algorithm || earlier.digest !== digest)) {
      throw new CorruptImageError(`${where}: manifest line ${i + 1} gives ${entry.name} a second, different digest`);
    }
    entries.set(entry.name, entry);
  }
  if (entries.size === 0 && ignoredLines.length > 0) {
    const first = ignoredLines[0]!;
    throw new CorruptImageError(
      `${where}: no line of the manifest is "ALGORITHM(file)= digest" (manifest line ${first.line}: ${JSON.stringify(first.text.slice(0, 200))})`,
    );
  }
  return { entries: [...entries.values()], ignoredLines };
}
