/**
 * Room for Buffers between V8's full collections, in the CLI process.
 *
 * After each full mark-compact V8 sets the old generation's next limit from the JS heap still alive, times a
 * growing factor it derives from its own speed (close to its minimum, 1.1, for a process like this one), and
 * it counts every Buffer byte allocated since that collection against the limit. A conversion keeps a JS heap
 * of about 10 MB while it allocates Buffers by the hundred MiB — Node's HTTP client makes two of them per
 * 64 KiB read of a body, one for the socket read and one copy for the body — so V8 ran a full collection for
 * every 8–30 MiB of them: 35–50 per conversion of the benchmark's zlib qcow2 over HTTP, each ~15–20 ms of CPU,
 * mostly on V8's marking threads, on a machine whose two cores the conversion already keeps busy.
 *
 * V8 reads --heap-growing-percent afresh at every full collection: while the heap is small, it is set so that
 * the next limit lies HEAP_HEADROOM above what is alive; a larger heap gets V8's own factor back. The Buffers
 * that pile up meanwhile are the price: HEAP_HEADROOM of RSS at most. Only the CLI does this: it owns its process,
 * whereas the library must not change the V8 settings of a program that embeds it.
 */

const MiB = 2 ** 20;

/** What may be allocated between two full collections, Buffers included, when the JS heap is small. */
export const HEAP_HEADROOM = 48 * MiB;

/** The growing factor is never set beyond this (a nearly empty heap would otherwise get a huge factor). */
const MAX_PERCENT = 1000;

/**
 * The --heap-growing-percent for a JS heap of `live` bytes after a full collection: the percent that puts the
 * next limit HEAP_HEADROOM above it, or 0 (V8's own factor) once that percent would be below 300, where V8's
 * factor may lie anyway.
 */
export function growingPercentFor(live: number): number {
  if (live <= 0) return MAX_PERCENT;
  const percent = Math.round((100 * HEAP_HEADROOM) / live);
  return percent < 300 ? 0 : Math.min(MAX_PERCENT, percent);
}

/**
 * Keeps HEAP_HEADROOM between full collections for the rest of the process, re-judged after each of them.
 * CHROMOGENIC_HEAP_HEADROOM=off leaves V8's own policy. node:v8 takes ~2 ms to load: it is loaded at the
 * first full collection, which a short command never reaches (a long one then runs one early collection at
 * V8's own limit).
 */
export function keepHeapHeadroom(): void {
  if (process.env.CHROMOGENIC_HEAP_HEADROOM === "off") return;
  const { PerformanceObserver, constants } = process.getBuiltinModule("node:perf_hooks");
  let current = -1;
  // A gc entry's detail says which collector ran (@types/node does not declare it).
  const major = (e: object) =>
    (e as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR;
  new PerformanceObserver((list) => {
    if (!list.getEntries().some(major)) return;
    const v8 = process.getBuiltinModule("node:v8");
    const percent = growingPercentFor(v8.getHeapStatistics().used_heap_size);
    if (percent === current) return;
    v8.setFlagsFromString(`--heap-growing-percent=${percent}`);
    current = percent;
  }).observe({ entryTypes: ["gc"] });
}
