/**
 * Checking an OVA against its manifest as virt-v2v does: every file the manifest lists and the archive holds
 * is read and must match its digest (a mismatch is an error: the archive is damaged or altered). What the
 * manifest does not cover is not an error but a warning the user sees — a file of the appliance it does not
 * list (its content goes unverified), a file it lists that the archive lacks (VMware exports have listed
 * files they then left out), a line that is not a digest. DSP0243 wants every file listed; producers do not
 * all comply, and refusing their appliances protects nothing the warning does not say.
 */
import { CorruptImageError } from "../errors.js";
import { FileInput } from "../inputs/file-input.js";
import { newDigest, type ManifestEntry, type ParsedManifest } from "./manifest.js";
import type { TarMember } from "./tar-index.js";

export interface ManifestCheck {
  readonly algorithm: string;
  /** Members read and found to match. */
  readonly verified: readonly string[];
}

/** At most this many skipped lines are named one by one; the rest are counted. */
const MAX_LINE_WARNINGS = 10;

/**
 * The manifest's entries keyed by the member each designates ("./x" and "dir\x" name the members "x" and
 * "dir/x"), and the warnings about what it leaves uncovered. `used` are the members the appliance is read
 * from (descriptor, referenced files).
 */
export function manifestCoverage(
  manifest: ParsedManifest,
  manifestName: string,
  members: ReadonlyMap<string, TarMember>,
  used: readonly TarMember[],
): { listed: Map<string, ManifestEntry>; warnings: string[] } {
  const warnings: string[] = [];
  for (const l of manifest.ignoredLines.slice(0, MAX_LINE_WARNINGS)) {
    warnings.push(`${manifestName} line ${l.line} is not "ALGORITHM(file)= digest"; ignored: ${quote(l.text)}`);
  }
  if (manifest.ignoredLines.length > MAX_LINE_WARNINGS) {
    warnings.push(`${manifestName}: ${manifest.ignoredLines.length - MAX_LINE_WARNINGS} more lines ignored`);
  }
  const listed = new Map<string, ManifestEntry>();
  for (const e of manifest.entries) {
    const name = manifestMemberName(e.name);
    if (members.has(name)) listed.set(name, e);
    else warnings.push(`${manifestName} lists ${quote(e.name)}, which is not in the archive; ignored`);
  }
  for (const m of new Set(used)) {
    if (!listed.has(m.name)) warnings.push(`${manifestName} does not list ${m.name}; its content is not verified`);
  }
  return { listed, warnings };
}

/** The member a manifest line designates: "./x" and "dir\\x" name the members "x" and "dir/x". */
export function manifestMemberName(entryName: string): string {
  return entryName.replace(/\\/g, "/").replace(/^(\.\/)+/, "");
}

/** Refuses a member whose digest is not the manifest's. */
export function checkDigest(path: string, member: string, entry: ManifestEntry, actual: string): void {
  if (actual === entry.digest) return;
  throw new CorruptImageError(
    `${path}: ${member} does not match the manifest (${entry.algorithm} ${actual}, manifest says ${entry.digest}): the archive is damaged or altered`,
  );
}

/** Reads every listed member, in archive order, and compares its digest with the manifest's. */
export async function verifyManifest(
  path: string,
  members: readonly TarMember[],
  listed: ReadonlyMap<string, ManifestEntry>,
  signal?: AbortSignal,
): Promise<ManifestCheck> {
  const file = await FileInput.open(path);
  try {
    const chunk = Buffer.allocUnsafe(4 * 2 ** 20);
    const verified: string[] = [];
    for (const m of members) {
      const entry = listed.get(m.name);
      if (!entry) continue;
      const digest = newDigest(entry.algorithm);
      for (let done = 0; done < m.size;) {
        if (signal?.aborted) throw signal.reason ?? new Error("aborted");
        const n = Math.min(chunk.length, m.size - done);
        digest.update(await file.readExact(m.dataOffset + done, n, chunk, m.name));
        done += n;
      }
      checkDigest(path, m.name, entry, digest.digest("hex"));
      verified.push(m.name);
    }
    return { algorithm: listed.values().next().value?.algorithm ?? "none", verified };
  } finally {
    await file.close();
  }
}

/** Text from the archive, safe to print: quoted, control characters escaped, cut at 200 characters. */
function quote(text: string): string {
  return JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}…` : text);
}
