/**
 * The job's source image: the one named (looked up, and refused unless ready), or a temporary snapshot of the
 * named instance (made, or on a resume found again and waited for). What it finds is saved in the job's state,
 * so a resume never looks it up or snapshots again.
 */
import { AbortedError, UsageError, WaitFailedError } from "../util/errors.js";
import type { ImageProvider, ProviderImage } from "../providers/provider.js";
import type { JobRun } from "./job-run.js";

/** Finds (or snapshots) the source and records it in the state: id, name, format, size, hash, a Xen guest? */
export async function findSource(run: JobRun): Promise<void> {
  const req = run.request.source;
  let image: ProviderImage | undefined;
  if (req.instance) {
    image = await snapshotInstance(run, req.instance);
  } else {
    image = await run.source.getImage(req.image!);
    if (!image) throw new UsageError(`${run.source.label}: no image "${req.image}"`);
    if (image.state !== "ready") {
      throw new UsageError(`${run.source.label}: image ${image.id} is ${image.rawStatus}, not ready to read`);
    }
  }
  if (image.unreadable) throw new UsageError(`${run.source.label}: image ${image.id} ${image.unreadable}`);
  if (!image.diskFormat || image.sizeBytes === undefined) {
    throw new UsageError(`${run.source.label}: image ${image.id} records no disk format or size`);
  }
  run.state.source = {
    id: image.id,
    name: image.name,
    format: image.diskFormat,
    size: image.sizeBytes,
    hash: image.hash,
    ...(image.xenGuest || (await run.source.capabilities()).xenGuests ? { xenGuest: true } : {}),
    ...(image.pieceBytes ? { pieceBytes: image.pieceBytes } : {}),
    ...(image.sequentialOnly ? { sequentialOnly: true } : {}),
  };
  if (image.hash) run.state.checksums.source = image.hash;
  run.sourceProperties = image.properties;
  await run.save();
}

/** The temporary snapshot: named before it is made, so a resume finds it even if its id was never saved. */
async function snapshotInstance(run: JobRun, instance: string): Promise<ProviderImage> {
  run.state.snapshot ??= { name: `chromogenic-snapshot-${run.state.id}` };
  run.state.phase = "snapshot-wait";
  await run.save();
  const snap = run.state.snapshot;
  let image = await run.source.getImage(snap.id ?? snap.name);
  if (image?.state === "failed") {
    await run.source.deleteImage(image.id);
    image = undefined;
  }
  run.phase("snapshot-wait", "start", `snapshot of ${instance} as ${snap.name}`);
  const meter = run.meter("snapshot-wait", null);
  const ticker = setInterval(() => meter.tick(), 1000);
  try {
    if (!image) {
      image = await run.source.createImageFromInstance({
        instance,
        imageName: snap.name,
        properties: { chromogenic_job: run.state.id },
        signal: run.signal,
      });
    } else if (image.state === "pending") {
      image = await waitReady(run.source, image.id, run.signal);
    }
  } finally {
    clearInterval(ticker);
  }
  meter.complete();
  snap.id = image.id;
  await run.save();
  run.phase("snapshot-wait", "end", `snapshot ${image.id}`);
  return image;
}

async function waitReady(provider: ImageProvider, id: string, signal?: AbortSignal): Promise<ProviderImage> {
  const deadline = Date.now() + 60 * 60_000;
  for (;;) {
    const image = await provider.getImage(id);
    if (!image) throw new WaitFailedError(`${provider.label}: image ${id} disappeared while being made`);
    if (image.state === "ready") return image;
    if (image.state === "failed") throw new WaitFailedError(`${provider.label}: image ${id} is ${image.rawStatus}`);
    if (Date.now() > deadline) {
      throw new WaitFailedError(`${provider.label}: image ${id} still ${image.rawStatus} after 1 h`);
    }
    if (signal?.aborted) throw new AbortedError();
    await new Promise((r) => setTimeout(r, 2000));
  }
}
