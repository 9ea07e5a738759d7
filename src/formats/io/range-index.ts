/**
 * The index of the range holding `position`, among ranges laid end to end (the extents of a VMDK, the pieces
 * of an SliceInput): `starts` holds each range's start in order, then the end of the last, so it is one longer
 * than the list of ranges. Empty ranges are passed over; a position at the very end gives the last range.
 */
export function rangeIndex(starts: readonly number[], position: number): number {
  // The last range starting at or before `position` (binary search: there may be thousands).
  let lo = 0;
  let hi = starts.length - 2;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid]! <= position) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
