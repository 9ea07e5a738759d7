/**
 * A bundle's parts read through a local folder that keeps every part once it is verified, so that a download
 * stopped part-way (by kill -9 too) fetches on its next run only the parts it had not got: a gzip stream cannot
 * be entered in the middle, so a resumed run reads the bundle from its first part again, but from this folder.
 *
 * A part is kept only after its SHA-1 matched the manifest's, under a temporary name renamed when whole
 * (DirectoryBundleStore.put); a kept part is checked again when read, since a file can be damaged between runs,
 * and one that no longer matches is fetched anew and replaced. The parts stay encrypted, as in the bucket: the
 * folder holds at most the bundle's (compressed) size. Removing the folder is the caller's business.
 */
import { createHash } from "node:crypto";
import { mkdir } from "node:fs/promises";
import type { BundleStore } from "./bundle-store.js";
import type { ParsedBundleManifest } from "./bundle-manifest.js";
import { DirectoryBundleStore } from "./directory-bundle-store.js";

export class PartCachingStore implements BundleStore {
  readonly label: string;
  /** Parts read from the folder, and fetched from the bundle's own store, in this run. */
  readonly counts = { kept: 0, fetched: 0 };
  private readonly digests: ReadonlyMap<string, string>;
  /** Set when a part could not be kept (a full disk): the download goes on without keeping more. */
  private keepFailed = false;

  private constructor(
    private readonly remote: BundleStore,
    private readonly local: DirectoryBundleStore,
    manifest: ParsedBundleManifest,
  ) {
    this.label = remote.label;
    this.digests = new Map(manifest.image.parts.map((p) => [p.filename, p.digest]));
  }

  /** Parts of `manifest` from `remote`, kept in `folder` (made, owner-only, when absent). */
  static async open(remote: BundleStore, manifest: ParsedBundleManifest, folder: string): Promise<PartCachingStore> {
    await mkdir(folder, { recursive: true, mode: 0o700 });
    return new PartCachingStore(remote, new DirectoryBundleStore(folder), manifest);
  }

  async get(name: string, maxBytes: number, signal?: AbortSignal): Promise<Uint8Array> {
    const digest = this.digests.get(name);
    if (digest === undefined) return this.remote.get(name, maxBytes, signal);
    // Absent, unreadable, too large or changed while read: all mean "not kept", and the part is fetched.
    const kept = await this.local.get(name, maxBytes, signal).catch(() => undefined);
    if (kept && sha1(kept) === digest) {
      this.counts.kept++;
      return kept;
    }
    const data = await this.remote.get(name, maxBytes, signal);
    this.counts.fetched++;
    if (sha1(data) === digest) {
      if (!this.keepFailed) {
        await this.local.put(name, data, signal).catch(() => {
          signal?.throwIfAborted();
          this.keepFailed = true;
        });
      }
    } else if (kept) {
      // A damaged copy is not left to be read again; the caller's own check reports the fetched part's mismatch.
      await this.local.delete(name);
    }
    return data;
  }

  put(name: string, data: Uint8Array, signal?: AbortSignal): Promise<void> {
    return this.remote.put(name, data, signal);
  }

  stat(name: string, signal?: AbortSignal): Promise<{ readonly size: number } | undefined> {
    return this.remote.stat(name, signal);
  }

  delete(name: string, signal?: AbortSignal): Promise<void> {
    return this.remote.delete(name, signal);
  }
}

function sha1(data: Uint8Array): string {
  return createHash("sha1").update(data).digest("hex");
}
