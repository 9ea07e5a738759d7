import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { convertFile, type ConvertFileResult } from "../formats/engine/convert.js";
import { diskDigest } from "../formats/engine/disk-digest.js";
import type { ProgressListener } from "../formats/engine/progress.js";
import { makeSampleImage, type SampleImage } from "./sample-image.js";

export interface DemoResult {
  readonly sample: SampleImage;
  readonly conversions: readonly (ConvertFileResult & { sha256: string })[];
  readonly sourceSha256: string;
  readonly verified: boolean;
}

/**
 * The quick start's job until the full pipeline exists: generate a sample guest disk, convert it raw →
 * compressed qcow2 → raw, and prove every output holds the same disk as the input.
 */
export async function runDemo(dir: string, onProgress?: ProgressListener): Promise<DemoResult> {
  await mkdir(dir, { recursive: true });
  const sample = await makeSampleImage(join(dir, "sample.raw"));
  const steps: [string, string, string, Record<string, string>][] = [
    [sample.path, join(dir, "sample.qcow2"), "qcow2", {}],
    [sample.path, join(dir, "sample-zlib.qcow2"), "qcow2", { compression_type: "zlib" }],
    [join(dir, "sample-zlib.qcow2"), join(dir, "roundtrip.raw"), "raw", {}],
  ];
  const sourceSha256 = await diskDigest(sample.path);
  const conversions = [];
  for (const [input, output, outputFormat, createOptions] of steps) {
    const result = await convertFile({ input, output, outputFormat, createOptions, onProgress });
    conversions.push({ ...result, sha256: await diskDigest(output) });
  }
  return { sample, conversions, sourceSha256, verified: conversions.every((c) => c.sha256 === sourceSha256) };
}
