/**
 * Delivery: an open source converted into the destination's format and handed over — written to the file
 * destination (an OVA included), streamed straight into the upload when the target writes sequentially (raw,
 * streamOptimized VMDK), or else written into one compact temporary file (qcow2, VHD, VDI: their writers seek)
 * that is then uploaded.
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { convertImage } from "../formats/engine/convert.js";
import { openOutputFile } from "../formats/io/open-output.js";
import { exportOva } from "../formats/ova/ova-writer.js";
import type { OvaTargetName } from "../formats/ova/ova-targets.js";
import type { CreateOptions, ImageSource } from "../formats/types.js";
import type { ProviderImage } from "../providers/provider.js";
import { checkOutputSpace } from "./job-preflight.js";
import type { JobRun } from "./job-run.js";
import { uploadImage } from "./store-image.js";
import { UploadStreamOutput } from "./upload-stream-output.js";
import { isOvaFormat } from "../formats/ova/ova-format.js";
import { createOptionsFor } from "./output-options.js";
import { getDriver, isPlainDisk } from "../formats/registry.js";
import { firmwareSupport } from "../guest/inspect/firmware-support.js";

/**
 * Converts `source` (owned: closed here) into the destination's format and delivers it. `dataTotal`, the data
 * bytes the source holds when known, gives the conversion's progress a total.
 */
export async function deliverImage(
  run: JobRun,
  source: ImageSource,
  dataTotal?: number | Promise<number | undefined>,
): Promise<ProviderImage | undefined> {
  const plan = run.state.plan!;
  const dest = run.request.destination;
  const format = plan.targetFormat;
  try {
    if (dest.kind === "file") {
      const out = resolve(dest.path);
      await checkOutputSpace(run, source, out);
      run.phase("convert", "start", `${source.format} → ${format} ${out}`);
      if (isOvaFormat(format)) {
        // The open source itself (a qcow2 read over HTTP Range included): no copy; closed below, not by exportOva.
        await exportOva({
          inputs: [source],
          output: out,
          target: (dest.target ?? "virtualbox") as OvaTargetName,
          name: dest.name ?? run.state.source!.name,
          signal: run.signal,
          onProgress: run.forward(),
          dataTotal,
        });
      } else {
        await convertIntoFile(run, source, out, format, createOptionsFor(format, dest.target), dataTotal);
      }
      run.phase("convert", "end");
      return undefined;
    }
    // A store that must be told how the disk starts (EC2's boot mode) learns it from the disk itself.
    run.guestFacts ??= {
      firmware: await firmwareSupport(source, run.state.source!.name).catch(() => "unknown" as const),
    };
    if (plan.targetAccess === "stream") {
      run.phase("convert", "start", `${source.format} → ${format}, streamed into the upload`);
      const output = new UploadStreamOutput();
      const target = await getDriver(format).create!(output, source.virtualSize, createOptionsFor(format, "cloud"));
      const converting = convertImage(source, target, {
        signal: run.signal,
        onProgress: run.forward(),
        dataTotal,
      }).then(
        () => output.end(),
        (e: unknown) => {
          output.fail(e as Error);
          throw e;
        },
      );
      converting.catch(() => undefined);
      const uploading = uploadImage(run, output.stream, isPlainDisk(format) ? source.virtualSize : undefined);
      // An upload that fails stops the conversion feeding it.
      uploading.catch((e: unknown) => output.fail(e as Error));
      const [c, u] = await Promise.allSettled([converting, uploading]);
      if (c.status === "rejected") throw c.reason;
      if (u.status === "rejected") throw u.reason;
      run.phase("convert", "end");
      return u.value;
    }
    const converted = join(run.workDir, `converted.${format}`);
    run.state.files.converted = converted;
    if (!run.state.done.includes("converted")) {
      await run.save();
      run.phase("convert", "start", `${source.format} → ${format} (compact temporary file, then uploaded)`);
      await convertIntoFile(run, source, converted, format, createOptionsFor(format, "cloud"), dataTotal);
      run.phase("convert", "end");
      run.state.done.push("converted");
      await run.save();
    }
    const size = (await stat(converted)).size;
    return await uploadImage(run, createReadStream(converted, { highWaterMark: 2 ** 20 }), size);
  } finally {
    // A count of the source's data may still walk its map: it ends (it never rejects) before the source closes.
    await dataTotal;
    await source.close().catch(() => undefined);
  }
}

/**
 * Converts `source` (not closed here) into a `format` file at `path`, given its name only once complete, so an
 * interrupted conversion never leaves a file that looks finished (formats/io/open-output.ts: a file there is
 * replaced keeping its owner and mode, a new one is readable by its owner only, as the image came from a store).
 */
export async function convertIntoFile(
  run: JobRun,
  source: ImageSource,
  path: string,
  format: string,
  options: CreateOptions,
  dataTotal?: number | Promise<number | undefined>,
): Promise<void> {
  const output = await openOutputFile(path);
  try {
    const target = await getDriver(format).create!(output, source.virtualSize, options);
    await convertImage(source, target, { signal: run.signal, onProgress: run.forward(), dataTotal });
    await output.commit();
  } finally {
    await output.discard();
  }
}
