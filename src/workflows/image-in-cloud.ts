/**
 * `image create` of an instance whose image its store cannot give out (an EBS-backed EC2 instance: its image is
 * a snapshot, and the EC2 API has no call that reads one; a Eucalyptus instance-store instance bundled by the
 * cloud, whose bundle only the cloud's key opens): the cloud makes the image itself, under the name asked for,
 * and no byte leaves it. That is all such a job can be: one that must read the bytes (cleaning, another
 * format, another cloud, making it bootable) is refused before anything is made, with the reason.
 *
 * The image's id is saved as the job's destination as soon as the cloud names it, so a resume waits for that one
 * instead of making another, and a failed job deletes it like any half-made destination.
 */
import { UsageError } from "../util/errors.js";
import type { ProviderImage } from "../providers/provider.js";
import type { JobPlan } from "./job-state.js";
import type { JobRun } from "./job-run.js";

/** The plan such a job reports: nothing read, nothing written here. */
function inCloudPlan(run: JobRun): JobPlan {
  return {
    mode: "passthrough",
    sourceFormat: "snapshot",
    targetFormat: "snapshot",
    sourceAccess: "stream",
    targetAccess: "stream",
    temporaryBytes: 0,
    workDir: run.workDir,
    notes: ["the instance's image is one its cloud cannot give out: made in the cloud, no byte moved"],
  };
}

/**
 * The job's image made in the cloud, when its instance's image cannot be read; undefined when it can (the job
 * then goes the usual way: snapshot, transfer, new image).
 */
export async function imageInCloud(run: JobRun): Promise<{ image: ProviderImage; plan: JobPlan } | undefined> {
  const { request, state } = run;
  const instance = request.source.instance;
  if (request.kind !== "image-create" || !instance || !run.source.instanceImageReadable) return undefined;
  // A resumed job follows the plan it saved; a new one asks the store.
  const inCloud = state.plan
    ? state.plan.sourceFormat === "snapshot"
    : !(await run.source.instanceImageReadable(instance, run.signal));
  if (!inCloud) return undefined;
  const dest = request.destination;
  const why =
    dest.kind !== "cloud" || dest.cloud !== request.source.cloud
      ? "another store"
      : request.clean
        ? "--clean"
        : dest.format
          ? "--format"
          : request.bootable?.when === "always"
            ? "--bootable"
            : undefined;
  if (why || dest.kind !== "cloud") {
    throw new UsageError(
      `${run.source.label}: ${instance}'s image cannot be read out of the cloud (an EBS snapshot, or a bundle ` +
        `only the cloud's key opens), which ${why} needs; \`image create\` without it makes the image in the cloud`,
    );
  }
  state.plan ??= inCloudPlan(run);
  state.phase = "snapshot-wait";
  await run.save();
  const name = dest.name ?? `${instance}-image`;
  run.phase("snapshot-wait", "start", `${instance} imaged in the cloud as ${name}`);
  let image = state.destination ? await run.source.getImage(state.destination.id) : undefined;
  if (!image || image.state === "failed") {
    image = await run.source.createImageFromInstance({
      instance,
      imageName: name,
      properties: { ...dest.properties, chromogenic_job: state.id },
      ...(dest.visibility ? { visibility: dest.visibility } : {}),
      signal: run.signal,
    });
  }
  state.destination = { id: image.id, completed: true };
  await run.save();
  for (const member of dest.members ?? []) await run.source.shareImage?.(image.id, member);
  run.phase("snapshot-wait", "end", `image ${image.id}`);
  return { image, plan: state.plan };
}
