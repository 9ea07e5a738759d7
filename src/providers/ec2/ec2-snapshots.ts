/**
 * EBS snapshots through EC2: DescribeSnapshots for one snapshot, DeleteSnapshot (idempotent: one already gone
 * is what was wanted), and waiting for a snapshot to complete (after CreateImage or CompleteSnapshot), with a
 * bound the caller scales to the volume size (ec2-wait-bounds.ts).
 */
import {
  DeleteSnapshotCommand,
  DescribeSnapshotsCommand,
  type DescribeSnapshotsCommandOutput,
} from "@aws-sdk/client-ec2";
import type { Ec2Connection } from "./ec2-connection.js";
import { pollUntilDone, type PollOptions } from "./ec2-poll.js";
import { ChromogenicError, WaitFailedError, errorCode } from "../../util/errors.js";

export interface Ec2Snapshot {
  readonly id: string;
  /** "pending", "completed", "error", "recoverable", "recovering". */
  readonly state: string;
  /** Why a snapshot is in "error", when EC2 says. */
  readonly stateMessage?: string;
  readonly volumeSizeGiB: number;
  /** "42%" as EC2 reports it, without the sign. */
  readonly progress?: string;
  readonly description?: string;
  readonly encrypted: boolean;
  readonly ownerId?: string;
}

/** One snapshot by id; a missing one is an ENOENT error naming it. */
export async function describeSnapshot(
  ec2: Ec2Connection,
  snapshotId: string,
  signal?: AbortSignal,
): Promise<Ec2Snapshot> {
  const missing = () => new ChromogenicError(`EC2 at ${ec2.endpoint} has no snapshot ${snapshotId}`, "ENOENT");
  let out: DescribeSnapshotsCommandOutput;
  try {
    out = await ec2.send<DescribeSnapshotsCommandOutput>(
      new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }),
      { call: "DescribeSnapshots", subject: snapshotId },
      signal,
    );
  } catch (e) {
    // InvalidSnapshot.NotFound: EC2's answer for an id it does not know.
    if (errorCode(e) === "ENOENT") throw missing();
    throw e;
  }
  const s = (out.Snapshots ?? []).find((x) => x.SnapshotId === snapshotId);
  if (!s) throw missing();
  if (s.VolumeSize === undefined) {
    throw new ChromogenicError(
      `EC2 at ${ec2.endpoint}: DescribeSnapshots gave snapshot ${snapshotId} without its volume size`,
      "ECLOUD",
    );
  }
  return {
    id: snapshotId,
    state: s.State ?? "unknown",
    ...(s.StateMessage ? { stateMessage: s.StateMessage } : {}),
    volumeSizeGiB: s.VolumeSize,
    ...(s.Progress ? { progress: s.Progress.replace(/%$/, "") } : {}),
    ...(s.Description ? { description: s.Description } : {}),
    encrypted: s.Encrypted ?? false,
    ...(s.OwnerId ? { ownerId: s.OwnerId } : {}),
  };
}

/** Deletes a snapshot; one that is already gone is not an error. One still used by an image is (EINUSE). */
export async function deleteSnapshot(ec2: Ec2Connection, snapshotId: string, signal?: AbortSignal): Promise<void> {
  try {
    await ec2.send(
      new DeleteSnapshotCommand({ SnapshotId: snapshotId }),
      { call: "DeleteSnapshot", subject: snapshotId },
      signal,
    );
  } catch (e) {
    if (errorCode(e) === "ENOENT") return;
    if ((e as { awsCode?: string }).awsCode === "InvalidSnapshot.InUse") {
      throw new ChromogenicError((e as Error).message, "EINUSE", { cause: e });
    }
    throw e;
  }
}

/** Waits until the snapshot is "completed"; "error" ends the wait with EC2's message. */
export async function waitForSnapshot(
  ec2: Ec2Connection,
  snapshotId: string,
  options: PollOptions,
): Promise<Ec2Snapshot> {
  const what = `snapshot ${snapshotId} at EC2 ${ec2.endpoint}`;
  return pollUntilDone(
    what,
    async (signal) => {
      const s = await describeSnapshot(ec2, snapshotId, signal);
      if (s.state === "completed") return { done: true, value: s };
      if (s.state === "error") {
        throw new WaitFailedError(`${what} ended in error${s.stateMessage ? `: ${s.stateMessage}` : ""}`);
      }
      return { done: false, state: s.state, ...(s.progress ? { progress: s.progress } : {}) };
    },
    options,
  );
}
