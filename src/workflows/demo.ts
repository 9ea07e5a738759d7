import { execFile } from "node:child_process";
import { createReadStream } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { diskDigest } from "../formats/engine/disk-digest.js";
import { convertFile } from "../formats/engine/convert.js";
import { OVA_FORMAT } from "../formats/ova/ova-format.js";
import { LocalProvider } from "../providers/local/local-provider.js";
import { cleaningUnavailable } from "./clean-step.js";
import { startJob, type JobResult } from "./image-job.js";
import { makeSampleImage, type SampleImage } from "./sample-image.js";
import type { WorkListener } from "../util/events.js";

const execFileP = promisify(execFile);

export interface DemoExport {
  readonly format: string;
  readonly output: string;
  readonly job: string;
  readonly seconds: number;
  /** SHA-256 of the guest-visible disk the output holds (for the OVA: of its disk, read back out). */
  readonly sha256: string;
  /** `qemu-img check` of a qcow2 output: "clean", "not installed", or what failed. */
  readonly qemuImgCheck?: string;
  /** `qemu-img compare` of the output's disk with the image it was exported from. */
  readonly qemuImgCompare?: string;
}

export interface DemoResult {
  readonly sample: SampleImage;
  /** The local store the demo works in. */
  readonly store: string;
  readonly sampleImageId: string;
  /** Set when the sample was cleaned (as root); else why cleaning was skipped. */
  readonly cleaning:
    { readonly job: string; readonly changes: number; readonly operations: readonly string[] } | undefined;
  readonly cleaningSkipped?: string;
  /** SHA-256 of the disk the exports were made from (the cleaned image, or the sample). */
  readonly exportedSha256: string;
  readonly sampleSha256: string;
  readonly exports: readonly DemoExport[];
  readonly verified: boolean;
}

/**
 * The quick start's job, with no cloud: a generated sample guest disk goes into a local image store, is cleaned
 * there (as root: a clean job leaves a cleaned copy in the store), then exported as a VirtualBox OVA and as
 * qcow2 by the same jobs that serve clouds, and every output is verified — by `qemu-img check`/`compare` where
 * qemu-img is installed, and always by reading the disks back with chromogenic's own readers.
 */
export async function runDemo(
  dir: string,
  options: { onEvent?: WorkListener; clean?: boolean } = {},
): Promise<DemoResult> {
  const root = resolve(dir);
  await mkdir(root, { recursive: true });
  const samplePath = join(root, "sample.raw");
  const sample = await makeSampleImage(samplePath);
  const sampleSha256 = await diskDigest(samplePath);
  const storeDir = join(root, "store");
  await rm(storeDir, { recursive: true, force: true });
  const store = new LocalProvider(storeDir);
  const cloud = `local:${storeDir}`;
  const uploaded = await store.uploadImage(
    { name: "chromogenic-sample", diskFormat: "raw", sizeBytes: sample.size },
    createReadStream(samplePath, { highWaterMark: 2 ** 20 }),
  );
  const work = join(root, "work");

  let exportFrom = uploaded.id;
  let cleaning: DemoResult["cleaning"];
  const cleaningSkipped = options.clean === false ? "cleaning not asked for" : cleaningUnavailable();
  if (!cleaningSkipped) {
    const cleaned = await startJob(
      {
        kind: "migrate",
        source: { cloud, image: uploaded.id },
        destination: { kind: "cloud", cloud, name: "chromogenic-sample-clean", format: "raw" },
        clean: {},
        workDir: work,
      },
      { onEvent: options.onEvent },
    );
    exportFrom = cleaned.image!.id;
    cleaning = {
      job: cleaned.job,
      changes: cleaned.cleaning?.changes ?? 0,
      operations: cleaned.cleaning?.operations ?? [],
    };
  }
  const exportedPath = (await store.localImagePath(exportFrom))!;
  const exportedSha256 = await diskDigest(exportedPath, { format: "raw" });

  const exports: DemoExport[] = [];
  for (const { format, target, diskOf, checkOutput } of demoOutputs(root)) {
    const output = join(root, `sample.${format}`);
    const r: JobResult = await startJob(
      {
        kind: "export",
        source: { cloud, image: exportFrom },
        destination: { kind: "file", path: output, format, target },
        workDir: work,
      },
      { onEvent: options.onEvent },
    );
    const disk = await diskOf(output);
    exports.push({
      format,
      output,
      job: r.job,
      seconds: r.seconds,
      sha256: await diskDigest(disk),
      qemuImgCheck: checkOutput ? await qemuImg(["check", output]) : undefined,
      qemuImgCompare: await qemuImg(["compare", "-f", "raw", exportedPath, disk]),
    });
  }
  const toolOk = (s: string | undefined) => s === undefined || s === "clean" || s === "qemu-img not installed";
  const verified = exports.every(
    (e) => e.sha256 === exportedSha256 && toolOk(e.qemuImgCheck) && toolOk(e.qemuImgCompare),
  );
  return {
    sample,
    store: storeDir,
    sampleImageId: uploaded.id,
    cleaning,
    cleaningSkipped,
    exportedSha256,
    sampleSha256,
    exports,
    verified,
  };
}

/**
 * What the demo exports: a VirtualBox OVA (its disk read back out to be compared) and a qcow2 (compared and
 * checked as it is).
 */
function demoOutputs(root: string) {
  return [
    {
      format: OVA_FORMAT,
      target: "virtualbox",
      checkOutput: false,
      diskOf: async (ova: string) => {
        const disk = join(root, "sample-from-ova.qcow2");
        await convertFile({ input: ova, output: disk, outputFormat: "qcow2" });
        return disk;
      },
    },
    { format: "qcow2", target: undefined, checkOutput: true, diskOf: async (qcow2: string) => qcow2 },
  ];
}

async function qemuImg(args: string[]): Promise<string> {
  return execFileP("qemu-img", args).then(
    () => "clean",
    (e: { code?: number | string; stderr?: string }) =>
      e.code === "ENOENT" ? "qemu-img not installed" : `exit ${e.code}: ${(e.stderr ?? "").trim()}`,
  );
}
