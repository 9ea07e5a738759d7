/**
 * How a qcow2 cluster is compressed, in the exact framing qemu reads back:
 *
 * - zlib: a raw deflate stream (no zlib or gzip wrapper) with a 4 KiB window (windowBits 12). qemu inflates
 *   with windowBits -12, which cannot read a stream made with a larger window, so the window must not grow.
 *   memLevel 9 as in qemu.
 * - zstd: one plain zstd frame, no length prefix. qemu decompresses with the streaming API until the cluster
 *   is full, so whatever follows the frame in its last sector (the next compressed cluster) is never read.
 *
 * Default levels are chosen for speed at nearly qemu's size. Measured on the benchmark's Debian root filesystem,
 * 64 KiB clusters, CPU time of one core (qemu's own levels are zlib 6 and zstd 3; qemu links the system zlib,
 * which managed 33 MiB/s at level 6, while Node bundles Chromium's faster zlib, ~1.6% larger at equal level):
 *   zlib  level 6: 61 MiB/s, +1.6% vs qemu   level 5: 83 MiB/s, +2.0%   level 4: 110 MiB/s, +3.1%
 *   zstd  level 3: 345 MiB/s, +0.4%           level 1: 420 MiB/s, +2.9%  (reused contexts, compression-lanes.ts)
 * On two cores, level 4 converts that disk 4x faster than `qemu-img convert -c` (level 6, one thread) and
 * level 1 zstd (in native batches, native/zstd-batch.c) 3.6x faster, within ~3% of qemu's output size either way;
 * `compression_level` picks another trade-off.
 */
import type { CompressionCodec } from "../../engine/compression-lanes.js";

const QEMU_WINDOW_BITS = 12;
const QEMU_MEM_LEVEL = 9;
export const DEFAULT_ZLIB_LEVEL = 4;
export const DEFAULT_ZSTD_LEVEL = 1;

export function qcow2Codec(
  compression: "zlib" | "zstd",
  level: number | undefined,
  clusterBits: number,
): CompressionCodec {
  if (compression === "zlib") {
    return {
      kind: "deflate-raw",
      level: level ?? DEFAULT_ZLIB_LEVEL,
      windowBits: QEMU_WINDOW_BITS,
      memLevel: QEMU_MEM_LEVEL,
    };
  }
  // A frame never holds more than one cluster, so a window larger than that only costs time and memory.
  return { kind: "zstd", level: level ?? DEFAULT_ZSTD_LEVEL, windowLog: clusterBits };
}
