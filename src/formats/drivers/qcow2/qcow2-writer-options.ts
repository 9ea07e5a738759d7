/**
 * The `-o key=value` options of qcow2 output: their documentation, and their validation into the settings the
 * writer uses. Everything here runs before the first byte is written, so a typo costs nothing.
 */
import type { CreateOptionDoc, CreateOptions } from "../../types.js";
import { UsageError } from "../../errors.js";
import { LIMITS } from "../../limits.js";
import { parseSize } from "../../engine/create-options.js";

export type Qcow2OutputCompression = "none" | "zlib" | "zstd";

export interface Qcow2WriterSettings {
  readonly clusterSize: number;
  readonly clusterBits: number;
  /** "none" stores clusters as they are; zlib or zstd compress every cluster that gets smaller. */
  readonly compression: Qcow2OutputCompression;
  /** Codec level; undefined means our default (see qcow2-writer-compression.ts). */
  readonly compressionLevel: number | undefined;
  readonly refcountBits: 16;
}

const MIN_CLUSTER = 512;
const MAX_CLUSTER = 2 * 2 ** 20; // qemu refuses to open anything larger
const DEFAULT_CLUSTER = 64 * 1024;
const LEVELS: Record<Exclude<Qcow2OutputCompression, "none">, { min: number; max: number }> = {
  zlib: { min: 1, max: 9 },
  zstd: { min: 1, max: 22 },
};

export const qcow2CreateOptions: readonly CreateOptionDoc[] = [
  {
    name: "cluster_size",
    description: "Allocation unit of the image; bigger clusters mean less metadata, smaller ones less waste",
    values: "power of two from 512 to 2M (suffixes k, M accepted)",
    default: "64k",
  },
  {
    name: "compression_type",
    description: "Compress every cluster that gets smaller, spread over all cores (`-c` means zlib)",
    values: "none, zlib, zstd (zstd images need qemu 5.1 or newer)",
    default: "none",
  },
  {
    name: "compression_level",
    description: "Codec level: higher is smaller and slower",
    values: "zlib 1-9, zstd 1-22",
    default: "zlib 4, zstd 1 (qemu uses 6 and 3: ~3% smaller output, several times slower)",
  },
  {
    name: "refcount_bits",
    description: "Width of a reference count entry",
    values: "16",
    default: "16",
  },
  {
    name: "compat",
    description: "qcow2 version to write; only version 3 is written",
    values: "1.1 (or v3)",
    default: "1.1",
  },
];

const KNOWN = new Set(qcow2CreateOptions.map((o) => o.name));

function parseClusterSize(text: string | undefined): number {
  if (text === undefined) return DEFAULT_CLUSTER;
  const size = parseSize(text, "qcow2 cluster_size");
  if (size < MIN_CLUSTER || size > MAX_CLUSTER || (size & (size - 1)) !== 0) {
    throw new UsageError(`qcow2 cluster_size ${text} must be a power of two from 512 to 2M`);
  }
  return size;
}

function parseCompression(text: string | undefined): Qcow2OutputCompression {
  if (text === undefined) return "none";
  if (text === "none" || text === "zlib" || text === "zstd") return text;
  throw new UsageError(`qcow2 compression_type "${text}" is not one of none, zlib, zstd`);
}

function parseLevel(text: string | undefined, compression: Qcow2OutputCompression): number | undefined {
  if (text === undefined) return undefined;
  if (compression === "none") {
    throw new UsageError("qcow2 compression_level needs compression_type=zlib or zstd");
  }
  const { min, max } = LEVELS[compression];
  const level = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!(level >= min && level <= max)) {
    throw new UsageError(
      `qcow2 compression_level "${text}" must be an integer from ${min} to ${max} for ${compression}`,
    );
  }
  return level;
}

/** Validates `options` for an image of `virtualSize` bytes; throws a UsageError naming the first bad one. */
export function parseQcow2Options(options: CreateOptions, virtualSize: number): Qcow2WriterSettings {
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) {
      throw new UsageError(`unknown qcow2 option "${key}" (known: ${[...KNOWN].join(", ")})`);
    }
  }
  const compat = options.compat;
  if (compat !== undefined && compat !== "1.1" && compat !== "v3") {
    throw new UsageError(`qcow2 compat "${compat}" is not supported: only 1.1 (version 3) is written`);
  }
  if (options.refcount_bits !== undefined && options.refcount_bits !== "16") {
    throw new UsageError(`qcow2 refcount_bits "${options.refcount_bits}" is not supported: only 16 is written`);
  }
  const clusterSize = parseClusterSize(options.cluster_size);
  const compression = parseCompression(options.compression_type);
  const compressionLevel = parseLevel(options.compression_level, compression);

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
