/**
 * Making the job's image in the destination store, by an upload or a server-side import, with the bookkeeping
 * that keeps a resumed job from leaving duplicates: what earlier runs left is removed first, and the new
 * record's id is saved before any byte moves (so a failure or a resume can delete it).
 */
import type { ProviderImage, UploadImageRequest, UploadOptions } from "../providers/provider.js";
import { OpenStackProvider, toProviderImage } from "../providers/openstack/openstack-provider.js";
import { UsageError } from "../formats/errors.js";
import type { JobRun } from "./job-run.js";
import { createOptionsFor } from "./output-options.js";
import { withoutXenProperties } from "../providers/xen-guest-image.js";
import { carryBootImages } from "./carry-boot-images.js";

/**
 * Properties a snapshot carries that describe the snapshot itself, not the disk: not copied to a new image. An
 * EC2 image's root device (its name, e.g. /dev/xvda, and whether it is an EBS volume) is where the disk sat in
 * that cloud: Nova names a new server's root device after `root_device_name`, which would give KVM guests
 * EC2's Xen names (xvda).
 */
const SNAPSHOT_ONLY_PROPERTIES = new Set([
  "image_type",
  "root_device_name",
  "root_device_type",
  "instance_uuid",
  "user_id",
  "image_location",
  "image_state",
  "owner_id",
  "owner_project_name",
  "owner_user_name",
  "base_image_ref",
  "boot_roles",
  "chromogenic_job",
  "stores",
]);

/** Uploads `data` as the destination image; `trustedHash`: the source's, which the destination checks for us. */
export function uploadImage(
  run: JobRun,
  data: AsyncIterable<Uint8Array>,
  sizeBytes: number | undefined,
  trustedHash?: { algorithm: string; value: string },
): Promise<ProviderImage> {
  return storeImage(run, "upload", sizeBytes, (request, options) =>
    run.destination!.uploadImage({ ...request, sizeBytes }, data, {
      ...options,
      trustedHash,
      // Read when the upload fails, not now: whether to keep may change while it runs (job-run.ts).
      get keepOnFailure() {
        return options.keepOnFailure;
      },
    }),
  );
}

/**
 * Makes the destination image through `put` (an upload, or a server-side import), with the job's bookkeeping
 * around it: leftovers of earlier runs removed first, the new record's id saved before any byte moves,
 * properties (inherited from the source, minus what describes a snapshot — and a Xen guest's marks once it is
 * made bootable; then the user's), members.
 */
export async function storeImage(
  run: JobRun,
  phase: "upload" | "import",
  sizeBytes: number | undefined,
  put: (request: UploadImageRequest, options: UploadOptions) => Promise<ProviderImage>,
): Promise<ProviderImage> {
  const dst = run.destination!;
  const dest = run.request.destination;
  if (dest.kind !== "cloud") throw new Error("upload without a destination store");
  await removeStaleUploads(run);
  const format = run.state.plan!.targetFormat;
  const kept = Object.fromEntries(
    Object.entries(run.sourceProperties ?? {}).filter(
      ([k]) => !SNAPSHOT_ONLY_PROPERTIES.has(k) && !k.startsWith("os_glance"),
    ),
  );
  // A disk made bootable on a PC needs neither Xen nor an external kernel: the scheduler must not ask for them.
  const inherited = run.state.plan!.bootable ? withoutXenProperties(kept) : kept;
  const name = destinationName(run);
  const properties: Record<string, string> = {
    ...inherited,
    ...(await carryBootImages(run, name)),
    ...dest.properties,
    chromogenic_job: run.state.id,
  };
  run.state.phase = phase;
  await run.save();
  run.phase(phase, "start", `${dst.label} as "${name}" (${format})`);
  const meter = run.meter(phase, sizeBytes ?? null);
  const image = await put(
    {
      name,
      diskFormat: format,
      visibility: dest.visibility ?? "private",
      properties,
      // What chromogenic wrote; passed-through bytes keep the source's own properties.
      subformat: run.state.plan!.mode === "passthrough" ? undefined : createOptionsFor(format, "cloud").subformat,
      // What reading the disk found, and what cleaning's inspection of the mounted guest added.
      ...(run.guestFacts || run.state.guest ? { guest: { ...run.guestFacts, ...run.state.guest } } : {}),
    },
    {
      signal: run.signal,
      onProgress: (b, t) => meter.set(b, t),
      onCreated: async (id) => {
        run.state.destination = { id, completed: false };
        await run.save();
      },
      resume: {
        state: run.state.uploadResume,
        save: async (state) => {
          run.state.uploadResume = state;
          await run.save();
        },
      },
      get keepOnFailure() {
        return run.keepsLeftovers;
      },
    },
  );
  meter.complete();
  run.state.uploadResume = undefined;
  run.state.destination = { id: image.id, completed: true };
  if (image.hash) run.state.checksums.destination = image.hash;
  run.state.bytes.upload = image.sizeBytes ?? 0;
  await run.save();
  for (const member of dest.members ?? []) {
    if (!dst.shareImage) throw new UsageError(`${dst.label} cannot share images (--share ${member})`);
    await dst.shareImage(image.id, member);
  }
  run.phase(phase, "end", image.id);
  return image;
}

/** Removes what an earlier, unfinished upload of this job left in the destination (no duplicates). */
/** The new image's name: the one asked for, else the source image's, as `openstack image create` users expect. */
function destinationName(run: JobRun): string {
  const dest = run.request.destination;
  return (dest.kind === "cloud" ? dest.name : undefined) ?? run.state.source!.name;
}

async function removeStaleUploads(run: JobRun): Promise<void> {
  const dst = run.destination!;
  if (run.state.destination && !run.state.destination.completed) {
    run.message(`removing the unfinished upload ${run.state.destination.id} of an earlier run`);
    await dst.deleteImage(run.state.destination.id);
    run.state.destination = undefined;
    await run.save();
  }
  const name = destinationName(run);
  // Glance filters by name itself: a large cloud's whole image list is not walked.
  const candidates =
    dst instanceof OpenStackProvider ? mapAsync(dst.glance.listImages({ name }), toProviderImage) : dst.listImages();
  for await (const image of candidates) {
    if (image.name === name && image.properties.chromogenic_job === run.state.id) {
      run.message(`removing ${image.id}, left by an earlier run of this job`);
      await dst.deleteImage(image.id);
    }
  }
}

async function* mapAsync<T, U>(items: AsyncIterable<T>, f: (item: T) => U): AsyncIterable<U> {
  for await (const item of items) yield f(item);
}
