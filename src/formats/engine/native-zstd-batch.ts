import { loadNativeAddon } from "../../util/native-addon.js";

/**
 * The batched zstd compressor in native/zstd-batch.c: every block of a batch becomes one independent zstd
 * frame, in one libuv threadpool task per batch instead of one round trip per block (see that file for why).
 * Absent when the addon was not built (no compiler or no libzstd-dev) or when CHROMOGENIC_NATIVE_ZSTD=off;
 * callers then use node:zlib's zstd streams, which produce frames of the same level and window.
 */
export interface ZstdBatchAddon {
  /** Bytes one block's frame may need: the stride of `output` in compressBatch. */
  compressBound(blockSize: number): number;
  /**
   * Compresses each `blockSize` block of `input` into `output` at i × compressBound(blockSize); `sizes[i]`
   * becomes the frame's length, or 0 for a block of zeros only (nothing written). None of the three may be
   * touched until the promise settles.
   */
  compressBatch(
    input: Buffer,
    blockSize: number,
    level: number,
    windowLog: number,
    output: Buffer,
    sizes: Int32Array,
  ): Promise<void>;
}

export function nativeZstdBatch(): ZstdBatchAddon | null {
  // Without the addon the stream lanes do the same work, more slowly.
  return process.env.CHROMOGENIC_NATIVE_ZSTD === "off" ? null : loadNativeAddon<ZstdBatchAddon>("zstd-batch");
}
