/**
 * How long to wait for EC2 work whose duration grows with the disk: a snapshot (CreateImage, CreateSnapshot),
 * an image becoming available, an export or import task. AWS publishes no throughput for any of these, so the
 * bound is not an estimate but a limit: generous enough that healthy work never reaches it (a first snapshot
 * copies every written block to S3, at rates seen from a few MiB/s upward, and an export or import task also
 * converts the disk and, for an import, inspects the guest), yet finite so that a task stuck in "pending" ends
 * the run with an error instead of holding it for ever. The caller passes the volume size in GiB (a snapshot's
 * VolumeSize, the sum of an image's block devices, an import's virtual size rounded up).
 */

export type Ec2WaitKind = "snapshot" | "image" | "export" | "import" | "store";

/** A fixed part for the work any size needs (queueing, attaching, the guest checks) and a part per GiB. */
const BOUNDS: Readonly<Record<Ec2WaitKind, { readonly baseMinutes: number; readonly perGiBMinutes: number }>> = {
  // 1 min per GiB is ~17 MiB/s: slower than any healthy snapshot of a written volume.
  snapshot: { baseMinutes: 15, perGiBMinutes: 1 },
  image: { baseMinutes: 15, perGiBMinutes: 1 },
  // Tasks read the snapshot, convert it and write S3 (or the reverse), in AWS's own queue: three times as long.
  export: { baseMinutes: 30, perGiBMinutes: 3 },
  import: { baseMinutes: 30, perGiBMinutes: 3 },
  store: { baseMinutes: 30, perGiBMinutes: 3 },
};

/** No wait ends later than this, whatever the size (a 64 TiB volume would otherwise be given months). */
export const MAX_WAIT_MS = 48 * 3600_000;

/** The wait bound in milliseconds for `kind` of work over `sizeGiB` GiB (unknown or below 1 counts as 1). */
export function waitBoundMs(kind: Ec2WaitKind, sizeGiB: number | undefined): number {
  const size = Number.isFinite(sizeGiB) && (sizeGiB ?? 0) > 1 ? Math.ceil(sizeGiB!) : 1;
  const { baseMinutes, perGiBMinutes } = BOUNDS[kind];
  return Math.min(MAX_WAIT_MS, (baseMinutes + perGiBMinutes * size) * 60_000);
}
