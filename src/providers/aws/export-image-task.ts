/**
 * ExportImage: AWS writes an AMI's disk into an S3 bucket as one object (VMDK stream-optimized, RAW or VHD),
 * and the object is then read with ranged GETs like any other. The task runs in AWS's own queue; it is polled
 * with DescribeExportImageTasks until it is completed, or ends (failed, deleted) with its status message. A
 * run that is cancelled or outlives its bound cancels the task with CancelExportTask, so AWS does not go on
 * writing an object nobody will read.
 *
 * The object's key is not in the task's reply: the VM Import/Export User Guide gives it as the prefix, the
 * task id, a dot and the format in lower case ("exports/export-ami-0123456789abcdef0.vmdk"),
 * https://docs.aws.amazon.com/vm-import/latest/userguide/start-image-export.html; the API reference:
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ExportImage.html,
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeExportImageTasks.html,
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CancelExportTask.html.
 */
import {
  CancelExportTaskCommand,
  DescribeExportImageTasksCommand,
  ExportImageCommand,
  type DescribeExportImageTasksCommandOutput,
  type ExportImageCommandOutput,
} from "@aws-sdk/client-ec2";
import type { Ec2Connection } from "../ec2/ec2-connection.js";
import { pollUntilDone, type PollOptions } from "../ec2/ec2-poll.js";
import { ChromogenicError, UsageError, WaitFailedError } from "../../util/errors.js";

export type ExportDiskFormat = "VMDK" | "RAW" | "VHD";

export interface ExportImageRequest {
  readonly imageId: string;
  readonly format: ExportDiskFormat;
  readonly bucket: string;
  /** Key prefix, e.g. "exports/" (the object is PREFIX + task id + "." + format). */
  readonly prefix?: string;
  /** The IAM role VM Import/Export writes the bucket as (default "vmimport"). */
  readonly roleName?: string;
  readonly description?: string;
  readonly signal?: AbortSignal;
}

export interface ExportedImage {
  readonly taskId: string;
  readonly bucket: string;
  readonly key: string;
}

/** The key AWS writes the export to. */
export function exportObjectKey(prefix: string | undefined, taskId: string, format: ExportDiskFormat): string {
  return `${prefix ?? ""}${taskId}.${format.toLowerCase()}`;
}

/** Starts the export; returns the task id. */
export async function startExportImage(ec2: Ec2Connection, request: ExportImageRequest): Promise<string> {
  if (!["VMDK", "RAW", "VHD"].includes(request.format)) {
    throw new UsageError(`ExportImage writes VMDK, RAW or VHD, not "${request.format}"`);
  }
  const out = await ec2.send<ExportImageCommandOutput>(
    new ExportImageCommand({
      ImageId: request.imageId,
      DiskImageFormat: request.format,
      S3ExportLocation: { S3Bucket: request.bucket, ...(request.prefix ? { S3Prefix: request.prefix } : {}) },
      ...(request.roleName ? { RoleName: request.roleName } : {}),
      ...(request.description ? { Description: request.description } : {}),
    }),
    { call: "ExportImage", subject: `of ${request.imageId} to s3://${request.bucket}/${request.prefix ?? ""}` },
    request.signal,
  );
  if (!out.ExportImageTaskId) {
    throw new ChromogenicError(`EC2 at ${ec2.endpoint}: ExportImage answered without a task id`, "ECLOUD");
  }
  return out.ExportImageTaskId;
}

/** Asks AWS to stop an export (an export already ended is left as it is). */
export async function cancelExportTask(ec2: Ec2Connection, taskId: string): Promise<void> {
  await ec2.send(new CancelExportTaskCommand({ ExportTaskId: taskId }), { call: "CancelExportTask", subject: taskId });
}

/**
 * Polls the export until it is completed and returns where the object is. "failed" and "deleted" end it with
 * AWS's status message; cancellation and the time limit cancel the task first.
 */
export async function waitForExportImage(
  ec2: Ec2Connection,
  taskId: string,
  target: { readonly bucket: string; readonly prefix?: string; readonly format: ExportDiskFormat },
  options: PollOptions,
): Promise<ExportedImage> {
  const what = `export task ${taskId} at EC2 ${ec2.endpoint}`;
  return pollUntilDone(
    what,
    async (signal) => {
      const out = await ec2.send<DescribeExportImageTasksCommandOutput>(
        new DescribeExportImageTasksCommand({ ExportImageTaskIds: [taskId] }),
        { call: "DescribeExportImageTasks", subject: taskId },
        signal,
      );
      const task = (out.ExportImageTasks ?? []).find((t) => t.ExportImageTaskId === taskId);
      if (!task) throw new ChromogenicError(`EC2 at ${ec2.endpoint} has no export task ${taskId}`, "ENOENT");
      const status = task.Status ?? "unknown";
      if (status === "completed") {
        const bucket = task.S3ExportLocation?.S3Bucket ?? target.bucket;
        const prefix = task.S3ExportLocation?.S3Prefix ?? target.prefix;
        return { done: true, value: { taskId, bucket, key: exportObjectKey(prefix, taskId, target.format) } };
      }
      if (status === "failed" || status === "deleted" || status === "deleting") {
        throw new WaitFailedError(`${what} ended ${status}${task.StatusMessage ? `: ${task.StatusMessage}` : ""}`);
      }
      const state = task.StatusMessage ? `${status}, ${task.StatusMessage}` : status;
      return { done: false, state, ...(task.Progress ? { progress: task.Progress } : {}) };
    },
    { ...options, onGiveUp: () => cancelExportTask(ec2, taskId) },
  );
}
