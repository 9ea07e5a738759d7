import type { OutputFile } from "./output-file.js";
import { largeRequestsAreSplit } from "./positional-io.js";

/**
 * Positional writes sent straight from their callers' buffers, a bounded number in flight at once. One write at
 * a time left a core idle while the page cache took each MiB; with several, the writes overlap each other and
 * whatever the writer does next (measured in docs/PERFORMANCE.md). With block-io's multi-MiB writes, 2: more
 * writes to one file only spin on its inode lock. Each write's `landed` promise tells its caller when the buffer
 * may be reused.
 */
export class WriteWindow {
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly output: OutputFile,
    private readonly maxInFlight = largeRequestsAreSplit() ? 2 : 4,
  ) {}

  /** Waits for room, then starts writing `data` at `position`; `data` must stay unchanged until `landed`. */
  async start(data: Buffer, position: number): Promise<{ readonly landed: Promise<void> }> {
    while (this.inFlight.size >= this.maxInFlight) await Promise.race(this.inFlight).catch(() => undefined);
    const landed = this.output.writeAt(data, position);
    this.inFlight.add(landed);
    // Leaves the window either way; a failure reaches the caller through `landed` and drain().
    const leave = () => void this.inFlight.delete(landed);
    landed.then(leave, leave);
    return { landed };
  }

  /** Resolves once every write started has landed; rejects if one failed. */
  async drain(): Promise<void> {
    await Promise.all(this.inFlight);
  }

  /** Waits for every write started to end, failed or not (for abort paths). */
  async settle(): Promise<void> {
    await Promise.allSettled(this.inFlight);
  }
}
