/**
 * The passthrough mode (same format, no cleaning): the stored bytes go unchanged from the source to the
 * destination — streamed from the download straight into the upload with nothing on disk, copied by the
 * destination's Glance itself with --server-side, or downloaded (resumably) into the file destination.
 */
import { basename, dirname, join, resolve } from "node:path";
import type { ProviderImage } from "../providers/provider.js";
import { OpenStackProvider } from "../providers/openstack/openstack-provider.js";
import { hashStream } from "./job-files.js";
import type { JobRun } from "./job-run.js";
import { downloadToFile } from "./resumable-download.js";
import { peekGuestFacts } from "./peek-guest-facts.js";
import { storeImage, uploadImage } from "./store-image.js";
import { isPlainDisk } from "../formats/registry.js";
import { lockOutputName } from "../formats/io/output-name-lock.js";
import { PRIVATE_OUTPUT_MODE } from "../formats/io/output-mode.js";
import { moveIntoPlace } from "../formats/io/replacing-output.js";
import { VerificationError } from "../util/errors.js";

export async function passthrough(run: JobRun): Promise<ProviderImage | undefined> {
  const src = run.state.source!;
  const dest = run.request.destination;
  if (dest.kind === "file") {
    const out = resolve(dest.path);
    const partial = join(dirname(out), `.${basename(out)}.${run.state.id}.partial`);
    // One job at a time writes the name; the image comes from a store, so it is its owner's only (io/output-mode.ts),
    // and a file it replaces keeps its owner and mode.
    const nameLock = await lockOutputName(out);
    try {
      await downloadToFile(run, partial, isPlainDisk(src.format), PRIVATE_OUTPUT_MODE);
      await moveIntoPlace(partial, out);
    } finally {
      await nameLock?.close();
    }
    run.state.files.download = undefined;
    await run.save();
    return undefined;
  }
  if (run.request.serverSide) {
    const copied = await serverSideCopy(run);
    if (copied) return copied;
  }
  // When the destination records the same kind of hash as the source, its own hash of what it stored is
  // compared with the source's: nothing is hashed here, leaving the CPU to the transfer.
  const destHash = (await run.destination!.capabilities()).hashAlgorithm;
  const trusted = src.hash && src.hash.algorithm === destHash ? src.hash : undefined;
  run.phase("download", "start", "streamed straight into the upload");
  const downloadMeter = run.meter("download", src.size);
  let data = run.source.downloadImage(src.id, {
    signal: run.signal,
    verify: !trusted,
    onProgress: (b, t) => downloadMeter.set(b, t),
  });
  if (isPlainDisk(src.format)) {
    // A raw disk passing through still tells the destination how it starts (EC2's boot mode).
    const peeked = await peekGuestFacts(data, src.size, src.name);
    run.guestFacts ??= peeked.facts;
    data = peeked.data;
  }
  const image = await uploadImage(run, data, src.size, trusted);
  if (trusted && image.hash?.algorithm !== trusted.algorithm) {
    // The destination hashes otherwise than announced: read the copy back to prove it.
    run.phase("verify", "start", `${trusted.algorithm} of the copy, read back`);
    const actual = await hashStream(
      run.destination!.downloadImage(image.id, { signal: run.signal }),
      trusted.algorithm,
      run.meter("verify", src.size),
    );
    run.phase("verify", "end");
    if (actual !== trusted.value)
      throw new VerificationError(`the copy's ${trusted.algorithm} differs from the source's`);
  }
  downloadMeter.complete();
  run.phase("download", "end");
  return image;
}

/**
 * With --server-side: the destination's Glance copies the image from the source region itself
 * (glance-download), so no byte passes through this machine. Undefined when the clouds cannot (then the job
 * streams, and says why).
 */
async function serverSideCopy(run: JobRun): Promise<ProviderImage | undefined> {
  const src = run.state.source!;
  if (!(run.source instanceof OpenStackProvider) || !(run.destination instanceof OpenStackProvider)) {
    run.message("--server-side: only between OpenStack regions; streaming instead");
    return undefined;
  }
  const { serverSideCopyPlan, copyImageBetweenRegions } =
    await import("../providers/openstack/glance-import-provider.js");
  const from = run.source;
  const to = run.destination;
  const plan = await serverSideCopyPlan(from, to, src.id);
  if (!plan.possible) {
    run.message(`--server-side: not possible (${plan.reason}); streaming instead`);
    return undefined;
  }
  return storeImage(run, "import", src.size, (request, options) =>
    copyImageBetweenRegions(from, to, src.id, request, options),
  );
}
