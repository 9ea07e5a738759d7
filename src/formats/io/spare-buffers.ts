/**
 * A few buffers kept for reuse by reads whose sizes vary (a qcow2 span of compressed clusters). A buffer
 * allocated per read and dropped is garbage outside V8's heap, and V8 counts such bytes against the old
 * generation's allocation limit: with a small heap, every 16–30 MiB of them brings a full mark-compact (a
 * zlib qcow2 over HTTP ran 50 of them for 300 MiB of spans, socket chunks and inflated clusters). Kept buffers
 * are allocated outside Node's shared pool, in whole MiB, so that the next span of a similar size fits.
 */

const GRANULE = 2 ** 20;

export class SpareBuffers {
  private readonly spare: Buffer[] = [];

  constructor(
    /** Buffers kept between uses; more than this many in use at once are allocated and then dropped. */
    private readonly maxKept: number,
    /** Larger buffers are allocated for the one use and not kept. */
    private readonly maxBytes: number,
  ) {}

  /** A buffer of exactly `length` bytes (a view of a kept one when one is large enough), to hand back with give(). */
  take(length: number): Buffer {
    let best = -1;
    for (let i = 0; i < this.spare.length; i++) {
      const size = this.spare[i]!.length;
      if (size >= length && (best < 0 || size < this.spare[best]!.length)) best = i;
    }
    if (best >= 0) return this.spare.splice(best, 1)[0]!.subarray(0, length);
    if (length > this.maxBytes) return Buffer.allocUnsafeSlow(length);
    const size = Math.min(this.maxBytes, Math.ceil(Math.max(length, 1) / GRANULE) * GRANULE);
    return Buffer.allocUnsafeSlow(size).subarray(0, length);
  }

  /** Returns a buffer from take(); the caller must not touch it afterwards. Keeps the largest ones. */
  give(view: Buffer): void {
    // take() allocates every buffer on its own ArrayBuffer, from its start.
    const whole = Buffer.from(view.buffer, 0, view.buffer.byteLength);
    if (whole.length > this.maxBytes) return;
    if (this.spare.length < this.maxKept) {
      this.spare.push(whole);
      return;
    }
    let smallest = 0;
    for (let i = 1; i < this.spare.length; i++) if (this.spare[i]!.length < this.spare[smallest]!.length) smallest = i;
    if (this.spare[smallest]!.length < whole.length) this.spare[smallest] = whole;
  }

  clear(): void {
    this.spare.length = 0;
  }
}
