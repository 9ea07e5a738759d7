/**
 * The parts of an output not written yet, for an output written in place (a block device, an existing file):
 * there the bytes the image leaves out still hold whatever was there before, and must be zeroed before the output
 * is complete. Targets write mostly in ascending order, so this keeps a frontier (everything below it is written,
 * or listed as a gap) and the gaps left below it; a write below the frontier (a header or table rewritten at the
 * end) takes its bytes out of the gaps.
 */
export class UnwrittenRanges {
  private frontier = 0;
  /** Disjoint [start, end) gaps below the frontier, in order. */
  private readonly gaps: [number, number][] = [];

  /** Gaps listed: when they pile up (a hostile map of tiny extents) the owner zeroes them early (`takeGaps`). */
  get count(): number {
    return this.gaps.length;
  }

  /** Records that [start, end) has been written. */
  wrote(start: number, end: number): void {
    if (end <= start) return;
    if (start < this.frontier) this.remove(start, Math.min(end, this.frontier));
    if (start > this.frontier) this.add(this.frontier, start);
    this.frontier = Math.max(this.frontier, end);
  }

  /**
   * Removes and returns the unwritten ranges below `end`: the gaps, and the stretch from the frontier to `end`
   * (the output's length) when there is one. Taken ranges count as written (their owner zeroes them).
   */
  take(end: number): [number, number][] {
    const taken = this.takeGaps().filter(([s]) => s < end);
    for (const gap of taken) gap[1] = Math.min(gap[1], end);
    if (this.frontier < end) taken.push([this.frontier, end]);
    this.frontier = Math.max(this.frontier, end);
    return taken;
  }

  /** Removes and returns the gaps below the frontier (which then count as written: their owner zeroes them). */
  takeGaps(): [number, number][] {
    return this.gaps.splice(0);
  }

  private add(start: number, end: number): void {
    const last = this.gaps.at(-1);
    if (last && last[1] === start) last[1] = end;
    else this.gaps.push([start, end]);
  }

  /** Takes [start, end) out of the gaps. */
  private remove(start: number, end: number): void {
    // The first gap ending after `start` (binary search: there may be many).
    let lo = 0;
    let hi = this.gaps.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.gaps[mid]![1] <= start) lo = mid + 1;
      else hi = mid;
    }
    const replacement: [number, number][] = [];
    let i = lo;
    for (; i < this.gaps.length && this.gaps[i]![0] < end; i++) {
      const [s, e] = this.gaps[i]!;
      if (s < start) replacement.push([s, start]);
      if (e > end) replacement.push([end, e]);
    }
    this.gaps.splice(lo, i - lo, ...replacement);
  }
}
