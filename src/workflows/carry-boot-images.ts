/**
 * An AMI-style image that is not made bootable keeps needing its external kernel and ramdisk. A destination
 * that keeps kernels as images of its own (`capabilities.externalKernels`: Eucalyptus, EC2) gets them too: the
 * source's kernel and ramdisk are fetched (source-kernel.ts) and stored there as kernel and ramdisk images, and
 * the new image names those — the source's ids mean nothing in another cloud. The original chromogenic
 * discarded them, leaving an image that could not boot.
 *
 * Within one cloud nothing is carried: the source's ids are valid there.
 *
 * Each id is saved in the job's state as soon as it is known; a failed job deletes them with its other leftovers.
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { JobRun } from "./job-run.js";
import { fetchSourceBootFiles } from "./source-kernel.js";

/** The kernel_id/ramdisk_id the new image should name in the destination, or {} when there is nothing to carry. */
export async function carryBootImages(run: JobRun, imageName: string): Promise<Record<string, string>> {
  const dst = run.destination;
  const source = run.sourceProperties ?? {};
  if (!dst || run.state.plan?.bootable || !source.kernel_id) return {};
  // In the source's own cloud (image create of an instance) its kernel and ramdisk are already images there: the
  // new image names them as the source does (its inherited kernel_id/ramdisk_id), nothing is stored again.
  const dest = run.request.destination;
  if (dest.kind === "cloud" && dest.cloud === run.request.source.cloud) return {};
  const capabilities = await dst.capabilities();
  if (!capabilities.externalKernels) return {};
  const files = await fetchSourceBootFiles(run);
  const done = (run.state.bootImages ??= {});
  for (const role of ["kernel", "ramdisk"] as const) {
    const path = files[role];
    if (!path || done[role]) continue;
    run.message(`storing the source's ${role} in ${dst.label}, for the new image to boot with`);
    const image = await dst.uploadImage(
      {
        name: `${imageName}-${role}`,
        diskFormat: capabilities.diskFormats[0]!,
        sizeBytes: (await stat(path)).size,
        properties: { image_type: role, chromogenic_job: run.state.id },
      },
      createReadStream(path),
      { signal: run.signal },
    );
    done[role] = image.id;
    await run.save();
  }
  return {
    ...(done.kernel ? { kernel_id: done.kernel } : {}),
    ...(done.ramdisk ? { ramdisk_id: done.ramdisk } : {}),
  };
}
