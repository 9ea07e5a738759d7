/**
 * Turns the writer's many small appends (single clusters, L2 tables, packed compressed bytes) into few large
 * positional writes: contiguous pieces are copied into a staging buffer that goes to the file in one call,
 * while a second buffer fills (double buffering keeps the disk and the CPU busy at once). Pieces already
 * large enough are written straight from the caller's memory, without a copy.
 *
 * Contract: once `write` resolves, the caller may reuse or modify `data`. `writeHeld` resolves as soon as the
 * write is under way and gives a `landed` promise: a direct write keeps the caller's memory until then, and
 * several direct writes may be in flight at once (the file's writes overlap each other and whatever the caller
 * does next).
 */
import type { OutputFile } from "../../io/output-file.js";
import { WriteWindow } from "../../io/write-window.js";

/**
 * 1 MiB: writes of that size already run at the page cache's full speed, and larger ones did worse — with 4 MiB
 * the kernel's time for the 300 MiB a zstd conversion writes swung between 0.3 and 0.7 s from run to run (this
 * kernel caches files in large folios), with 1 MiB it stays at 0.3 s.
 */
const STAGING_BYTES = 2 ** 20;
/** A piece at least this large, arriving when nothing is staged, is not worth copying. */
const DIRECT_WRITE_BYTES = 2 ** 20;
const LANDED: Promise<void> = Promise.resolve();

export class WriteCoalescer {
  private staging = Buffer.allocUnsafe(STAGING_BYTES);
  private spare = Buffer.allocUnsafe(STAGING_BYTES);
  private stagedAt = 0;
  private stagedBytes = 0;
  /** The previous staging buffer on its way to the file. */
  private flushing: Promise<void> | undefined;
  /** Direct writes on their way to the file, straight from their callers' memory. */
  private readonly direct: WriteWindow;

  constructor(private readonly output: OutputFile) {
    this.direct = new WriteWindow(output);
  }

  async write(position: number, data: Buffer): Promise<void> {
    await (
      await this.writeHeld(position, data)
    ).landed;
  }

  /** Starts writing `data` at `position`; `data` must stay unchanged until `landed` resolves. */
  async writeHeld(position: number, data: Buffer): Promise<{ readonly landed: Promise<void> }> {
    if (this.stagedBytes > 0 && position !== this.stagedAt + this.stagedBytes) await this.startFlush();
    if (this.stagedBytes + data.length > STAGING_BYTES) await this.startFlush();
    if (this.stagedBytes === 0 && data.length >= DIRECT_WRITE_BYTES) return this.direct.start(data, position);
    if (this.stagedBytes === 0) this.stagedAt = position;
    data.copy(this.staging, this.stagedBytes);
    this.stagedBytes += data.length;
    if (this.stagedBytes === STAGING_BYTES) await this.startFlush();
    return { landed: LANDED };
  }

  /** Writes everything staged and waits until the file has it and every direct write. */
  async drain(): Promise<void> {
    await this.startFlush();
    await this.flushing;
    this.flushing = undefined;
    await this.direct.drain();
  }

  /** Sends the staged bytes on their way and swaps buffers; waits only for the flush before it. */
  private async startFlush(): Promise<void> {
    if (this.stagedBytes === 0) return;
    await this.flushing;
    const full = this.staging;
    this.staging = this.spare;
    this.spare = full;
    const flushing = this.output.writeAt(full.subarray(0, this.stagedBytes), this.stagedAt);
    // Awaited by the next flush or by drain(); until then a failure must not count as unhandled.
    flushing.catch(() => undefined);
    this.flushing = flushing;
    this.stagedBytes = 0;
  }
}
