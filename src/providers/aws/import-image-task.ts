/**
 * VM Import: ImportImage (a disk in S3 becomes an AMI: AWS converts it, checks and adapts the guest) and
 * ImportSnapshot (a disk in S3 becomes an EBS snapshot, nothing done to the guest). Both run as tasks polled
 * with DescribeImportImageTasks / DescribeImportSnapshotTasks until "completed"; a task that ends otherwise
 * ("deleted" after a failure, with a "ClientError: …" status message) is an error quoting AWS's message. A run
 * cancelled or past its bound sends CancelImportTask first, so no AMI or snapshot appears later for nobody.
 * Check the disk with vm-import-requirements.ts before uploading it.
 *
 * References (Amazon EC2 API Reference): API_ImportImage.html, API_ImportSnapshot.html,
 * API_DescribeImportImageTasks.html, API_DescribeImportSnapshotTasks.html, API_CancelImportTask.html
 * (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/); statuses: VM Import/Export User Guide,
 * "Monitor an import image task" (https://docs.aws.amazon.com/vm-import/latest/userguide/check-import-task-status.html).
 */
import {
  CancelImportTaskCommand,
  DescribeImportImageTasksCommand,
  DescribeImportSnapshotTasksCommand,
  ImportImageCommand,
  ImportSnapshotCommand,
  type DescribeImportImageTasksCommandOutput,
  type DescribeImportSnapshotTasksCommandOutput,
  type ImportImageCommandOutput,
  type ImportSnapshotCommandOutput,
} from "@aws-sdk/client-ec2";
import type { Ec2Connection } from "../ec2/ec2-connection.js";
import { pollUntilDone, type PollOptions, type PollStep } from "../ec2/ec2-poll.js";
import { ChromogenicError, UsageError, WaitFailedError } from "../../util/errors.js";

/** The disk formats ImportImage and ImportSnapshot read (DiskContainer.Format). */
export type ImportDiskFormat = "OVA" | "VHD" | "VHDX" | "VMDK" | "RAW";

/** The disk as uploaded: an S3 object in the account's region. */
export interface ImportDiskSource {
  readonly format: ImportDiskFormat;
  readonly bucket: string;
  readonly key: string;
  readonly description?: string;
}

interface ImportCommon {
  readonly description?: string;
  /** The IAM role VM Import reads the bucket as (default "vmimport"). */
  readonly roleName?: string;
  readonly signal?: AbortSignal;
}

export interface ImportImageRequest extends ImportCommon {
  /** The disks, boot disk first. */
  readonly disks: readonly ImportDiskSource[];
  /** "uefi-preferred" is refused by ImportImage (API reference, BootMode). */
  readonly bootMode?: "legacy-bios" | "uefi";
  /** ImportImage's valid values: i386, x86_64. */
  readonly architecture?: "i386" | "x86_64";
  readonly platform?: "Linux" | "Windows";
  /** "AWS" (licence included) or "BYOL". */
  readonly licenseType?: "AWS" | "BYOL";
}

export interface ImportSnapshotRequest extends ImportCommon {
  readonly disk: ImportDiskSource;
}

export interface ImportResult {
  readonly taskId: string;
  /** The AMI, for ImportImage. */
  readonly imageId?: string;
  readonly snapshotIds: readonly string[];
}

const missingTaskId = (ec2: Ec2Connection, call: string) =>
  new ChromogenicError(`EC2 at ${ec2.endpoint}: ${call} answered without a task id`, "ECLOUD");

const s3Url = (d: ImportDiskSource) => `s3://${d.bucket}/${d.key}`;

/** Starts ImportImage; returns the task id. */
export async function startImportImage(ec2: Ec2Connection, request: ImportImageRequest): Promise<string> {
  if (request.disks.length === 0) throw new UsageError("ImportImage needs at least one disk");
  if ((request.bootMode as string | undefined) === "uefi-preferred") {
    throw new UsageError('ImportImage does not take boot mode "uefi-preferred": give "uefi" or "legacy-bios"');
  }
  const out = await ec2.send<ImportImageCommandOutput>(
    new ImportImageCommand({
      DiskContainers: request.disks.map((d) => ({
        Format: d.format,
        UserBucket: { S3Bucket: d.bucket, S3Key: d.key },
        ...(d.description ? { Description: d.description } : {}),
      })),
      ...(request.bootMode ? { BootMode: request.bootMode } : {}),
      ...(request.architecture ? { Architecture: request.architecture } : {}),
      ...(request.platform ? { Platform: request.platform } : {}),
      ...(request.licenseType ? { LicenseType: request.licenseType } : {}),
      ...(request.roleName ? { RoleName: request.roleName } : {}),
      ...(request.description ? { Description: request.description } : {}),
    }),
    { call: "ImportImage", subject: `of ${request.disks.map(s3Url).join(", ")}` },
    request.signal,
  );
  if (!out.ImportTaskId) throw missingTaskId(ec2, "ImportImage");
  return out.ImportTaskId;
}

/** Starts ImportSnapshot; returns the task id. */
export async function startImportSnapshot(ec2: Ec2Connection, request: ImportSnapshotRequest): Promise<string> {
  const d = request.disk;
  const out = await ec2.send<ImportSnapshotCommandOutput>(
    new ImportSnapshotCommand({
      DiskContainer: {
        Format: d.format,
        UserBucket: { S3Bucket: d.bucket, S3Key: d.key },
        ...(d.description ? { Description: d.description } : {}),
      },
      ...(request.roleName ? { RoleName: request.roleName } : {}),
      ...(request.description ? { Description: request.description } : {}),
    }),
    { call: "ImportSnapshot", subject: `of ${s3Url(d)}` },
    request.signal,
  );
  if (!out.ImportTaskId) throw missingTaskId(ec2, "ImportSnapshot");
  return out.ImportTaskId;
}

/** Asks AWS to stop an import task (ImportImage's or ImportSnapshot's). */
export async function cancelImportTask(ec2: Ec2Connection, taskId: string): Promise<void> {
  await ec2.send(new CancelImportTaskCommand({ ImportTaskId: taskId }), { call: "CancelImportTask", subject: taskId });
}

/** A task as one Describe call shows it, and what it made once completed. */
interface ImportTaskView {
  readonly status?: string;
  readonly message?: string;
  readonly progress?: string;
  readonly imageId?: string;
  readonly snapshotIds: readonly string[];
}

/** The Describe call of each kind of import task, reduced to the same view. */
const DESCRIBE: Record<
  "image" | "snapshot",
  (ec2: Ec2Connection, taskId: string, signal?: AbortSignal) => Promise<ImportTaskView | undefined>
> = {
  image: async (ec2, taskId, signal) => {
    const out = await ec2.send<DescribeImportImageTasksCommandOutput>(
      new DescribeImportImageTasksCommand({ ImportTaskIds: [taskId] }),
      { call: "DescribeImportImageTasks", subject: taskId },
      signal,
    );
    const task = (out.ImportImageTasks ?? []).find((t) => t.ImportTaskId === taskId);
    return (
      task && {
        status: task.Status,
        message: task.StatusMessage,
        progress: task.Progress,
        imageId: task.ImageId,
        snapshotIds: (task.SnapshotDetails ?? []).map((d) => d.SnapshotId).filter((id): id is string => !!id),
      }
    );
  },
  snapshot: async (ec2, taskId, signal) => {
    const out = await ec2.send<DescribeImportSnapshotTasksCommandOutput>(
      new DescribeImportSnapshotTasksCommand({ ImportTaskIds: [taskId] }),
      { call: "DescribeImportSnapshotTasks", subject: taskId },
      signal,
    );
    const d = (out.ImportSnapshotTasks ?? []).find((t) => t.ImportTaskId === taskId)?.SnapshotTaskDetail;
    return (
      d && {
        status: d.Status,
        message: d.StatusMessage,
        progress: d.Progress,
        snapshotIds: d.SnapshotId ? [d.SnapshotId] : [],
      }
    );
  },
};

/**
 * Polls an import task until "completed" (its AMI for ImportImage, its snapshots); "active" goes on, any other
 * status ends the wait with AWS's status message.
 */
async function waitForImportTask(
  ec2: Ec2Connection,
  taskId: string,
  kind: "image" | "snapshot",
  options: PollOptions,
): Promise<ImportResult> {
  const what = `import ${kind} task ${taskId} at EC2 ${ec2.endpoint}`;
  return pollUntilDone(
    what,
    async (signal): Promise<PollStep<ImportResult>> => {
      const task = await DESCRIBE[kind](ec2, taskId, signal);
      if (!task) throw new ChromogenicError(`EC2 at ${ec2.endpoint} has no import task ${taskId}`, "ENOENT");
      const { status = "unknown", message, progress } = task;
      if (status === "active") {
        return { done: false, state: message ? `active, ${message}` : status, ...(progress ? { progress } : {}) };
      }
      if (status !== "completed") throw new WaitFailedError(`${what} ended ${status}${message ? `: ${message}` : ""}`);
      if (kind === "image" ? !task.imageId : task.snapshotIds.length === 0) {
        throw new ChromogenicError(`${what} completed without the ${kind} it made`, "ECLOUD");
      }
      return {
        done: true,
        value: { taskId, ...(task.imageId ? { imageId: task.imageId } : {}), snapshotIds: task.snapshotIds },
      };
    },
    { ...options, onGiveUp: () => cancelImportTask(ec2, taskId) },
  );
}

export function waitForImportImage(ec2: Ec2Connection, taskId: string, options: PollOptions): Promise<ImportResult> {
  return waitForImportTask(ec2, taskId, "image", options);
}

export function waitForImportSnapshot(ec2: Ec2Connection, taskId: string, options: PollOptions): Promise<ImportResult> {
  return waitForImportTask(ec2, taskId, "snapshot", options);
}
