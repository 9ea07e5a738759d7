/**
 * Reading an AMI through ExportImage instead of the EBS direct APIs (--aws-read-via export): AWS writes the
 * root volume into the bucket as RAW — the AMI's disk as every workflow already sees it (ProviderImage's
 * diskFormat "raw", its size the root volume's), so the plan stays the same whichever way it is read — and the
 * object is then read in place with ranged GETs (s3-object-input.ts). Fewer bytes would move as VMDK, but a
 * stream-optimized VMDK is read only in order, which would turn the in-place conversion into a download.
 *
 * The object is temporary: it is removed when the input is closed, or when the export fails or is cancelled,
 * unless `keep` (--keep) asks for leftovers to stay.
 */
import type { ImageInput } from "../../formats/inputs/image-input.js";
import type { Ec2Connection } from "../ec2/ec2-connection.js";
import type { Ec2Image } from "../ec2/ec2-records.js";
import { waitBoundMs } from "../ec2/ec2-wait-bounds.js";
import { ensureBucket } from "../ec2/s3-bucket.js";
import type { S3Connection } from "../ec2/s3-connection.js";
import { deleteObject } from "../ec2/s3-objects.js";
import { checkAmiReadable } from "./ami-read-check.js";
import { exportObjectKey, startExportImage, waitForExportImage } from "./export-image-task.js";
import { requireAwsBucket, type AwsSettings } from "./aws-settings.js";
import { openS3ObjectInput } from "./s3-object-input.js";

/** Where exports go in the bucket, so that they are told apart from anything else kept there. */
export const EXPORT_PREFIX = "chromogenic-exports/";

export interface ExportReadContext {
  readonly ec2: Ec2Connection;
  readonly s3: S3Connection;
  readonly settings: AwsSettings;
}

export async function openExportedAmi(
  context: ExportReadContext,
  image: Ec2Image,
  options: { readonly signal?: AbortSignal; readonly keep?: boolean } = {},
): Promise<ImageInput> {
  const { ec2, s3, settings } = context;
  const { signal, keep } = options;
  checkAmiReadable(image, { path: "export-image" });
  const bucket = requireAwsBucket(settings, "--aws-read-via export");
  // In the cloud's region: VM Import/Export reads and writes only buckets in the task's region.
  await ensureBucket(s3, bucket, signal, s3.settings.region);
  // Not cancelled half way: a task AWS started whose id never arrived could not be cancelled. A
  // cancellation is seen by the wait, which cancels the task.
  const taskId = await startExportImage(ec2, {
    imageId: image.id,
    format: "RAW",
    bucket,
    prefix: EXPORT_PREFIX,
    roleName: settings.vmImportRole,
    description: `chromogenic: read of ${image.id}`,
  });
  // A failed or cancelled export may have written part of it (or all, if the failure came after).
  const removeQuietly = (key: string) => (keep ? undefined : deleteObject(s3, bucket, key).catch(() => undefined));
  const sizeGiB = image.blockDeviceMappings.reduce((sum, m) => sum + (m.volumeSizeGiB ?? 0), 0);
  let key = exportObjectKey(EXPORT_PREFIX, taskId, "RAW");
  try {
    const exported = await waitForExportImage(
      ec2,
      taskId,
      { bucket, prefix: EXPORT_PREFIX, format: "RAW" },
      { timeoutMs: waitBoundMs("export", sizeGiB), intervalMs: settings.taskPollMs, ...(signal ? { signal } : {}) },
    );
    key = exported.key;
    return await openS3ObjectInput(s3, exported.bucket, exported.key, {
      ...(signal ? { signal } : {}),
      // A removal that fails on close is raised: an object left behind unannounced would be billed.
      ...(keep ? {} : { onClose: () => deleteObject(s3, exported.bucket, exported.key) }),
    });
  } catch (e) {
    await removeQuietly(key);
    throw e;
  }
}
