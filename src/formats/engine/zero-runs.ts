/**
 * Splits a buffer of disk data into runs of data and runs of zeros at a fixed granularity, so targets can
 * leave zeroed clusters sparse (qemu-img convert's -S does the same, default 4 KiB).
 */
export interface Run {
  readonly offset: number;
  readonly length: number;
  readonly zero: boolean;
}

const ZEROS = Buffer.alloc(2 * 1024 * 1024);

function isZero(buf: Buffer, start: number, end: number): boolean {
  // Buffer.equals is a memcmp in C++; far faster than a JS loop over the bytes.
  for (let pos = start; pos < end; pos += ZEROS.length) {
    const n = Math.min(ZEROS.length, end - pos);
    if (!buf.subarray(pos, pos + n).equals(ZEROS.subarray(0, n))) return false;
  }
  return true;
}

/** True when every byte of `buf` is zero. */
export function isAllZero(buf: Buffer): boolean {
  return isZero(buf, 0, buf.length);
}

/**
 * Runs covering `buf`, which holds disk bytes starting at disk offset `base`. Unit boundaries are aligned to
 * the disk (not to the buffer), so a partial unit at either edge is judged on its own.
 */
export function zeroRuns(buf: Buffer, base: number, granularity: number): Run[] {
  const runs: Run[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const unitEnd = Math.min(buf.length, granularity - ((base + pos) % granularity) + pos);
    const zero = isZero(buf, pos, unitEnd);
    const last = runs[runs.length - 1];
    if (last && last.zero === zero) runs[runs.length - 1] = { ...last, length: last.length + (unitEnd - pos) };
    else runs.push({ offset: base + pos, length: unitEnd - pos, zero });
    pos = unitEnd;
  }
  return runs;
}
