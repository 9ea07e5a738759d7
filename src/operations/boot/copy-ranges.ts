/**
 * The input's filesystems copied block by block into the new disk, through the engine: any format it reads,
 * only the data its allocation map holds (holes and zero runs are left as holes of the sparse working file),
 * at most two 4 MiB reads ahead of the writes.
 */
import type { FileHandle } from "node:fs/promises";
import { AbortedError } from "../../util/errors.js";
import type { ImageSource } from "../../formats/types.js";
import { writeAt } from "../../formats/io/positional-io.js";
import { zeroRuns } from "../../formats/engine/zero-runs.js";
import { ProgressMeter } from "../../util/progress-meter.js";
import type { ProgressListener } from "../../util/events.js";

const CHUNK = 4 * 2 ** 20;
const READ_AHEAD = 2;
/** Zero runs this long and aligned are left unwritten: the working file is sparse. */
const ZERO_GRANULARITY = 64 * 1024;

export interface RangeCopy {
  readonly from: number;
  readonly to: number;
  readonly length: number;
}

/** Data extents of [from, from + length), cut at CHUNK boundaries. */
async function* dataPieces(source: ImageSource, copy: RangeCopy): AsyncGenerator<{ offset: number; length: number }> {
  for await (const e of source.extents(copy.from, copy.length)) {
    if (e.kind !== "data") continue;
    let pos = e.offset;
    const end = e.offset + e.length;
    while (pos < end) {
      const next = Math.min(end, (Math.floor(pos / CHUNK) + 1) * CHUNK);
      yield { offset: pos, length: next - pos };
      pos = next;
    }
  }
}

export async function copyRanges(
  source: ImageSource,
  target: FileHandle,
  copies: readonly RangeCopy[],
  options: { signal?: AbortSignal; onProgress?: ProgressListener } = {},
): Promise<{ dataBytes: number }> {
  const meter = new ProgressMeter({ phase: "copy", total: null, listener: options.onProgress });
  let dataBytes = 0;
  for (const copy of copies) {
    if (copy.from < 0 || copy.from + copy.length > source.virtualSize) throw new RangeError("copy outside the input");
    const pending: { offset: number; data: Promise<Buffer> }[] = [];
    const iterator = dataPieces(source, copy);
    let done = false;
    const refill = async () => {
      while (!done && pending.length < READ_AHEAD) {
        const next = await iterator.next();
        if (next.done) done = true;
        else {
          const data = source.read(next.value.offset, next.value.length);
          data.catch(() => undefined); // awaited in order below
          pending.push({ offset: next.value.offset, data });
        }
      }
    };
    await refill();
    while (pending.length) {
      if (options.signal?.aborted) throw new AbortedError();
      const piece = pending.shift()!;
      const buf = await piece.data;
      await refill();
      const shift = copy.to - copy.from;
      for (const run of zeroRuns(buf, piece.offset, ZERO_GRANULARITY)) {
        if (run.zero) continue;
        const at = run.offset - piece.offset;
        await writeAt(target, buf.subarray(at, at + run.length), run.offset + shift);
        dataBytes += run.length;
      }
      meter.advance(buf.length);
    }
  }
  meter.complete();
  return { dataBytes };
}
