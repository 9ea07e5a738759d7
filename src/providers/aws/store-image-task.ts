/**
 * Store and restore an AMI through S3: CreateStoreImageTask writes an AMI (its metadata and every snapshot) to a
 * bucket as one object, DescribeStoreImageTasks follows it, and CreateRestoreImageTask makes a new AMI from that
 * object — in another account or region that can read the bucket.
 *
 * The object is AWS's own archive of the AMI, not a disk image: no format is documented for it and nothing but
 * CreateRestoreImageTask reads it. It serves only to move an AMI through S3; to read an AMI's disk, use the
 * EBS direct APIs or ExportImage (export-image-task.ts). There is no call to cancel a store task: a caller that
 * gives up deletes the object (once the task has ended) itself.
 *
 * References (Amazon EC2 API Reference): API_CreateStoreImageTask.html, API_DescribeStoreImageTasks.html,
 * API_CreateRestoreImageTask.html (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/); Amazon EC2 User
 * Guide, "Store and restore an AMI using S3" (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ami-store-restore.html).
 */
import {
  CreateRestoreImageTaskCommand,
  CreateStoreImageTaskCommand,
  DescribeStoreImageTasksCommand,
  type CreateRestoreImageTaskCommandOutput,
  type CreateStoreImageTaskCommandOutput,
  type DescribeStoreImageTasksCommandOutput,
} from "@aws-sdk/client-ec2";
import type { Ec2Connection } from "../ec2/ec2-connection.js";
import { pollUntilDone, type PollOptions } from "../ec2/ec2-poll.js";
import { ChromogenicError, WaitFailedError } from "../../util/errors.js";

export interface StoredImage {
  readonly imageId: string;
  readonly bucket: string;
  /** The object AWS wrote, "ami-….bin". */
  readonly key: string;
}

/** Starts storing `imageId` in `bucket`; returns the object key AWS will write. */
export async function startStoreImage(
  ec2: Ec2Connection,
  imageId: string,
  bucket: string,
  signal?: AbortSignal,
): Promise<StoredImage> {
  const out = await ec2.send<CreateStoreImageTaskCommandOutput>(
    new CreateStoreImageTaskCommand({ ImageId: imageId, Bucket: bucket }),
    { call: "CreateStoreImageTask", subject: `of ${imageId} to s3://${bucket}` },
    signal,
  );
  if (!out.ObjectKey) {
    throw new ChromogenicError(`EC2 at ${ec2.endpoint}: CreateStoreImageTask answered without an object key`, "ECLOUD");
  }
  return { imageId, bucket, key: out.ObjectKey };
}

/** Polls until the store task of `stored.imageId` is Completed; Failed ends it with AWS's reason. */
export async function waitForStoreImage(
  ec2: Ec2Connection,
  stored: StoredImage,
  options: PollOptions,
): Promise<StoredImage> {
  const what = `store task of ${stored.imageId} at EC2 ${ec2.endpoint}`;
  return pollUntilDone(
    what,
    async (signal) => {
      const out = await ec2.send<DescribeStoreImageTasksCommandOutput>(
        new DescribeStoreImageTasksCommand({ ImageIds: [stored.imageId] }),
        { call: "DescribeStoreImageTasks", subject: stored.imageId },
        signal,
      );
      // An AMI keeps the results of its earlier store tasks: the one writing this object is the one wanted.
      const task = (out.StoreImageTaskResults ?? []).find(
        (t) => t.AmiId === stored.imageId && (t.S3objectKey === undefined || t.S3objectKey === stored.key),
      );
      if (!task) throw new ChromogenicError(`EC2 at ${ec2.endpoint} has no store task of ${stored.imageId}`, "ENOENT");
      const state = task.StoreTaskState ?? "unknown";
      if (state === "Completed") return { done: true, value: stored };
      if (state === "Failed") {
        throw new WaitFailedError(
          `${what} failed${task.StoreTaskFailureReason ? `: ${task.StoreTaskFailureReason}` : ""}`,
        );
      }
      return {
        done: false,
        state,
        ...(task.ProgressPercentage !== undefined ? { progress: String(task.ProgressPercentage) } : {}),
      };
    },
    options,
  );
}

/** A new AMI (pending until its snapshots are made: wait with waitForImage) from a stored object. */
export async function restoreImage(
  ec2: Ec2Connection,
  source: { readonly bucket: string; readonly key: string; readonly name?: string },
  signal?: AbortSignal,
): Promise<string> {
  const out = await ec2.send<CreateRestoreImageTaskCommandOutput>(
    new CreateRestoreImageTaskCommand({
      Bucket: source.bucket,
      ObjectKey: source.key,
      ...(source.name ? { Name: source.name } : {}),
    }),
    { call: "CreateRestoreImageTask", subject: `of s3://${source.bucket}/${source.key}` },
    signal,
  );
  if (!out.ImageId) {
    throw new ChromogenicError(`EC2 at ${ec2.endpoint}: CreateRestoreImageTask answered without an image id`, "ECLOUD");
  }
  return out.ImageId;
}
