import { loadNativeAddon } from "../../util/native-addon.js";

/**
 * The batched inflater in native/inflate-batch.c: raw deflate streams inflated one batch per libuv threadpool
 * task, each straight into its place in the caller's buffer (see that file for why). Absent when the addon was
 * not built or when CHROMOGENIC_NATIVE_INFLATE=off; callers then use node:zlib's inflateRaw, cluster by cluster.
 */
export interface InflateBatchAddon {
  /**
   * Inflates stream i, `plan[4i + 1]` bytes of `input` from `plan[4i]`, into `plan[4i + 3]` bytes of `output`
   * from `plan[4i + 2]`. `results[i]` becomes the bytes it decompressed to when it ended within that room, -1
   * when it holds more, -2 when it is not deflate data (the promise then resolves to zlib's message for the
   * first such stream, else to null), -3 when the input ends first. None of the four may be touched until the
   * promise settles.
   */
  inflateBatch(input: Buffer, plan: Float64Array, output: Buffer, results: Int32Array): Promise<string | null>;
}

export const INFLATE_MORE_THAN_ROOM = -1;
export const INFLATE_NOT_DEFLATE = -2;
export const INFLATE_TRUNCATED = -3;

export function nativeInflateBatch(): InflateBatchAddon | null {
  return process.env.CHROMOGENIC_NATIVE_INFLATE === "off" ? null : loadNativeAddon<InflateBatchAddon>("inflate-batch");
}
