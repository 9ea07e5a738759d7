import type { OutputFile } from "./output-file.js";

/** Largest zero buffer appended at once. */
const ZERO_CHUNK = 2 ** 20;
/** Shared by every caller: nothing ever writes into it. */
let zeroChunk: Buffer | undefined;

/**
 * Appends `length` zero bytes to `output`: how a target writes a zero run to a sequential output (a pipe or a
 * tar member), which has no holes to leave instead.
 */
export async function appendZeros(output: OutputFile, length: number): Promise<void> {
  zeroChunk ??= Buffer.alloc(ZERO_CHUNK);
  for (let left = length; left > 0; left -= ZERO_CHUNK) {
    await output.append(left >= ZERO_CHUNK ? zeroChunk : zeroChunk.subarray(0, left));
  }
}
