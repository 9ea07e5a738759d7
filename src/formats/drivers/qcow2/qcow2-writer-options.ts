/**
 * The settings the qcow2 writer uses, from the `-o key=value` options (qcow2-create-options.ts) and the disk's
 * size. Everything here runs before the first byte is written, so a typo costs nothing.
 */
import type * as z from "zod";
import type { CreateOptions } from "../../types.js";
import { UsageError } from "../../errors.js";
import { LIMITS } from "../../limits.js";
import { validateCreateOptions } from "../../engine/create-option-validation.js";
import type { qcow2CreateOptions } from "./qcow2-create-options.js";

export type Qcow2OutputCompression = NonNullable<z.output<typeof qcow2CreateOptions>["compression_type"]>;

export interface Qcow2WriterSettings {
  readonly clusterSize: number;
  readonly clusterBits: number;
  /** "none" stores clusters as they are; zlib or zstd compress every cluster that gets smaller. */
  readonly compression: Qcow2OutputCompression;
  /** Codec level; undefined means our default (see qcow2-writer-compression.ts). */
  readonly compressionLevel: number | undefined;
  readonly refcountBits: 16;
}

const DEFAULT_CLUSTER = 64 * 1024;

/** The schema, loaded when there are options to check (zod stays out of a plain conversion's start-up). */
export const loadQcow2CreateOptions = async () => (await import("./qcow2-create-options.js")).qcow2CreateOptions;

/** Validates `options` for an image of `virtualSize` bytes; throws a UsageError naming every bad one. */
export async function qcow2WriterSettings(options: CreateOptions, virtualSize: number): Promise<Qcow2WriterSettings> {
  const given = await validateCreateOptions("qcow2", loadQcow2CreateOptions, options);
  const clusterSize = given.cluster_size ?? DEFAULT_CLUSTER;
  const compression = given.compression_type ?? "none";
  const compressionLevel = given.compression_level;

  if (!Number.isSafeInteger(virtualSize) || virtualSize < 0 || virtualSize > LIMITS.maxVirtualSize) {
    throw new UsageError(`qcow2 virtual size ${virtualSize} is outside 0..${LIMITS.maxVirtualSize} bytes`);
  }
  // qemu will not open an image whose L1 table exceeds 32 MiB; small clusters hit that first (128 GiB at 512 B).
  const l2Entries = clusterSize / 8;
  const l1Bytes = Math.ceil(Math.ceil(virtualSize / clusterSize) / l2Entries) * 8;
  if (l1Bytes > LIMITS.maxTableBytes) {
    throw new UsageError(
      `qcow2 with cluster_size ${clusterSize} cannot address ${virtualSize} bytes (L1 table over 32 MiB); use a larger cluster_size`,
    );
  }
  return { clusterSize, clusterBits: Math.log2(clusterSize), compression, compressionLevel, refcountBits: 16 };
}
