/**
 * Digests of an OVA's members taken as they pass, for an archive read once in order. The manifest may come
 * after the files it lists (DSP0243 allows it last, and VirtualBox and chromogenic write it there), so until it
 * has been read every member is hashed with each algorithm a manifest may name; once it is known, only the
 * members it lists, with the algorithm it gives them. At the end the digests are checked against the manifest
 * as the archive lists it (assembleOva), so the check is the one verifyManifest makes on a file.
 */
import type { Hash } from "node:crypto";
import {
  MANIFEST_ALGORITHMS,
  newDigest,
  type ManifestAlgorithm,
  type ManifestEntry,
  type ParsedManifest,
} from "./manifest.js";
import { checkDigest, manifestMemberName, type ManifestCheck } from "./manifest-check.js";
import type { TarMember } from "./tar-index.js";

/** A member's running digests, fed its bytes in order. */
export interface MemberHash {
  update(bytes: Buffer): void;
  /** Records the digests; the member's bytes have all been fed. */
  finish(): void;
}

export class MemberDigests {
  /** The manifest's algorithm for each member it lists, once it has been read. */
  private listed: Map<string, ManifestAlgorithm> | undefined;
  private readonly results = new Map<string, Map<ManifestAlgorithm, string>>();

  /** From now on, hash only what `manifest` lists, with its algorithms. */
  useManifest(manifest: ParsedManifest): void {
    this.listed = new Map(manifest.entries.map((e) => [manifestMemberName(e.name), e.algorithm]));
  }

  /** Running digests for `member`, or undefined when the manifest read does not list it. */
  start(member: TarMember): MemberHash | undefined {
    const algorithms = this.listed ? this.listed.get(member.name) : undefined;
    if (this.listed && !algorithms) return undefined;
    const hashes = new Map<ManifestAlgorithm, Hash>(
      (algorithms ? [algorithms] : MANIFEST_ALGORITHMS).map((a) => [a, newDigest(a)]),
    );
    return {
      update: (bytes) => {
        for (const h of hashes.values()) h.update(bytes);
      },
      finish: () => {
        const done = new Map<ManifestAlgorithm, string>();
        for (const [a, h] of hashes) done.set(a, h.digest("hex"));
        this.results.set(member.name, done);
      },
    };
  }

  /** Checks every member `listed` (the manifest's entries by member, as assembleOva resolves them). */
  verify(path: string, members: readonly TarMember[], listed: ReadonlyMap<string, ManifestEntry>): ManifestCheck {
    const verified: string[] = [];
    for (const m of members) {
      const entry = listed.get(m.name);
      if (!entry) continue;
      const actual = this.results.get(m.name)?.get(entry.algorithm);
      // Every member is hashed as it passes; one that was not cannot be vouched for.
      if (actual === undefined) throw new Error(`${path}: ${m.name} was not hashed as it passed`);
      checkDigest(path, m.name, entry, actual);
      verified.push(m.name);
    }
    return { algorithm: listed.values().next().value?.algorithm ?? "none", verified };
  }
}
