/**
 * Cuts the encrypted stream into the bundle's parts as it passes: each part's SHA-1 computed as its bytes arrive,
 * each part stored whole through the BundleStore while the next ones are being made, with at most `inFlight`
 * stores pending (so memory stays at a few parts whatever the image's size).
 */
import { createHash, type Hash } from "node:crypto";
import type { BundleStore } from "./bundle-store.js";
import type { BundlePart } from "./bundle-manifest.js";

export class PartCutter {
  private current: Buffer;
  private filled = 0;
  private hash: Hash = createHash("sha1");
  private readonly pending: Promise<void>[] = [];
  /** Part buffers whose store is done, reused: a fresh 10 MiB per part left hundreds of MiB for the GC to find. */
  private readonly spare: Buffer[] = [];
  private readonly parts: BundlePart[] = [];
  /** Names stored (or being stored), to remove on failure. */
  readonly stored: string[] = [];
  totalBytes = 0;

  constructor(
    private readonly store: BundleStore,
    private readonly partName: (index: number) => string,
    private readonly partSize: number,
    private readonly inFlight: number,
    private readonly signal?: AbortSignal,
    /** A part already stored whole (same name, same size) is left as it is: a resumed run of the same bundle. */
    private readonly skipStored = false,
  ) {
    this.current = Buffer.allocUnsafe(partSize);
  }

  async write(data: Buffer): Promise<void> {
    let at = 0;
    while (at < data.length) {
      const take = Math.min(data.length - at, this.partSize - this.filled);
      data.copy(this.current, this.filled, at, at + take);
      this.hash.update(data.subarray(at, at + take));
      this.filled += take;
      at += take;
      if (this.filled === this.partSize) await this.cut();
    }
  }

  /** Stores the last part and waits for every store; returns the parts in order. */
  async finish(): Promise<BundlePart[]> {
    if (this.filled > 0 || this.parts.length === 0) await this.cut();
    await Promise.all(this.pending.splice(0));
    return this.parts;
  }

  /** Waits for pending stores to settle (after a failure, before removing what they stored). */
  async settle(): Promise<void> {
    await Promise.allSettled(this.pending.splice(0));
  }

  private async cut(): Promise<void> {
    const name = this.partName(this.parts.length);
    this.parts.push({ filename: name, digest: this.hash.digest("hex") });
    this.stored.push(name);
    const data = this.current.subarray(0, this.filled);
    this.totalBytes += this.filled;
    const buffer = this.current;
    const put = (async () => {
      const stored = this.skipStored ? await this.store.stat(name, this.signal) : undefined;
      if (stored?.size !== data.length) await this.store.put(name, data, this.signal);
      this.spare.push(buffer);
    })();
    put.catch(() => undefined);
    this.pending.push(put);
    this.current = this.spare.pop() ?? Buffer.allocUnsafe(this.partSize);
    this.filled = 0;
    this.hash = createHash("sha1");
    // Bounded: wait for the oldest store once too many are pending; its failure fails the bundle here.
    while (this.pending.length >= this.inFlight) await this.pending.shift();
  }
}
