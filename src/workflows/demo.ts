import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { convertFile } from "../formats/engine/convert.js";
import { diskDigest } from "../formats/engine/disk-digest.js";
import type { ProgressListener } from "../formats/engine/progress.js";
import { exportOva } from "../formats/ova/ova-writer.js";
import { convertOvaDisk } from "../formats/ova/ova-convert.js";
import { makeSampleImage, type SampleImage } from "./sample-image.js";

export interface DemoStep {
  /** What was done, e.g. "raw → qcow2 (zlib)". */
  readonly step: string;
  readonly output: string;
  readonly outputFormat: string;
  readonly dataBytes: number;
  readonly seconds: number;
  /** SHA-256 of the guest-visible disk the output holds (for the OVA: of its disk, read back out). */
  readonly sha256: string;
}

export interface DemoResult {
  readonly sample: SampleImage;
  readonly steps: readonly DemoStep[];
  readonly sourceSha256: string;
  readonly verified: boolean;
}

/**
 * The quick start's job until the full cloud pipeline exists: generate a sample guest disk, convert it to
 * qcow2 (plain and zlib-compressed) and back to raw, package it as a VirtualBox OVA and stream its disk back
 * out (manifest verified), and prove every output holds the same disk as the input.
 */
export async function runDemo(dir: string, onProgress?: ProgressListener): Promise<DemoResult> {
  await mkdir(dir, { recursive: true });
  const sample = await makeSampleImage(join(dir, "sample.raw"));
  const sourceSha256 = await diskDigest(sample.path);
  const steps: DemoStep[] = [];
  const conversions: [string, string, string, string, Record<string, string>][] = [
    ["raw → qcow2", sample.path, join(dir, "sample.qcow2"), "qcow2", {}],
    ["raw → qcow2 (zlib)", sample.path, join(dir, "sample-zlib.qcow2"), "qcow2", { compression_type: "zlib" }],
    ["qcow2 (zlib) → raw", join(dir, "sample-zlib.qcow2"), join(dir, "roundtrip.raw"), "raw", {}],
  ];
  for (const [step, input, output, outputFormat, createOptions] of conversions) {
    const r = await convertFile({ input, output, outputFormat, createOptions, onProgress });
    steps.push({
      step,
      output,
      outputFormat,
      dataBytes: r.dataBytes,
      seconds: r.seconds,
      sha256: await diskDigest(output),
    });
  }

  const ova = join(dir, "sample.ova");
  const exported = await exportOva({
    inputs: [sample.path],
    output: ova,
    target: "virtualbox",
    name: "chromogenic-sample",
    onProgress,
  });
  const fromOva = join(dir, "from-ova.qcow2");
  await convertOvaDisk({ input: ova, output: fromOva, outputFormat: "qcow2", onProgress });
  steps.push({
    step: "raw → OVA (virtualbox) → qcow2",
    output: ova,
    outputFormat: "ova",
    dataBytes: exported.dataBytes,
    seconds: exported.seconds,
    sha256: await diskDigest(fromOva),
  });
  return { sample, steps, sourceSha256, verified: steps.every((s) => s.sha256 === sourceSha256) };
}
