/**
 * The `-o key=value` options of qcow2 output (loaded on demand: see qcow2-writer-options.ts, which applies the
 * defaults and turns them into the writer's settings).
 */
import { choice, createOptionsSchema, integer, option, powerOfTwoSize } from "../../engine/create-option-schema.js";

/** Levels each codec takes: zlib's 1-9, zstd's 1-22 (0 would mean zstd's default, which we set explicitly). */
const QCOW2_COMPRESSION_LEVELS = { zlib: { min: 1, max: 9 }, zstd: { min: 1, max: 22 } } as const;

export const qcow2CreateOptions = createOptionsSchema({
  cluster_size: option(powerOfTwoSize(512, 2 * 2 ** 20), {
    description: "Allocation unit of the image; bigger clusters mean less metadata, smaller ones less waste",
    default: "64k",
  }),
  compression_type: option(choice(["none", "zlib", "zstd"]), {
    description:
      "Compress every cluster that gets smaller, spread over all cores (`-c` means zlib); zstd images need qemu 5.1 or newer",
    default: "none",
  }),
  compression_level: option(integer(1, 22), {
    description: "Codec level: higher is smaller and slower",
    values: "zlib 1..9, zstd 1..22",
    default: "zlib 4, zstd 1 (qemu uses 6 and 3: ~3% smaller output, several times slower)",
  }),
  refcount_bits: option(integer(16, 16, "is not supported: only 16 is written"), {
    description: "Width of a reference count entry",
    default: "16",
  }),
  compat: option(choice(["1.1", "v3"], "is not supported: only 1.1 (version 3) is written"), {
    description: "qcow2 version to write; only version 3 is written",
    default: "1.1",
  }),
}).superRefine((options, ctx) => {
  if (options.compression_level === undefined) return;
  const codec = options.compression_type ?? "none";
  if (codec === "none") {
    ctx.addIssue({
      code: "custom",
      path: ["compression_level"],
      message: "needs compression_type=zlib or zstd",
    });
    return;
  }
  const { min, max } = QCOW2_COMPRESSION_LEVELS[codec];
  if (options.compression_level < min || options.compression_level > max) {
    ctx.addIssue({
      code: "custom",
      path: ["compression_level"],
      message: `is not an integer from ${min} to ${max} for ${codec}`,
    });
  }
});
