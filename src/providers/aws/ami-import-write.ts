/**
 * Making an AMI through VM Import instead of the EBS direct APIs (--aws-write-via import): the raw disk is
 * checked against VM Import's published requirements before any byte moves (vm-import-requirements.ts), sent
 * to the bucket with the resumable multipart upload, imported with ImportImage, and the object removed at the
 * end. VM Import adapts the guest on the way (drivers, boot settings) where the EBS direct path writes the
 * disk as it is.
 *
 * ImportImage takes no name: the AMI it makes is called after its task ("import-ami-…"), and an AMI's name
 * cannot be changed afterwards. So the imported snapshot is registered again as an AMI with the name asked for
 * and the boot mode, architecture and ENA setting the EBS direct path gives, and the task's own AMI is
 * deregistered (its snapshot, now the new AMI's, stays). This is a Linux-minded choice: a Windows guest
 * imported with a licence included carries a billing code on the task's AMI that a new registration loses.
 *
 * A task that fails leaves nothing: its AMI (if any) deregistered, its snapshots deleted, the object removed
 * — all of it kept with --keep (keepOnFailure). A cancelled run aborts its multipart upload too: a resumed job
 * uploads again from the start (the upload's own resume is not wired to the job's state on this path).
 */
import { randomBytes } from "node:crypto";
import type { UploadImageRequest, UploadOptions } from "../provider.js";
import type { Ec2Connection } from "../ec2/ec2-connection.js";
import { describeImage, deregisterImage, registerImage } from "../ec2/ec2-images.js";
import { deleteSnapshot } from "../ec2/ec2-snapshots.js";
import { waitBoundMs } from "../ec2/ec2-wait-bounds.js";
import { ensureBucket } from "../ec2/s3-bucket.js";
import type { S3Connection } from "../ec2/s3-connection.js";
import { abortMultipartUpload, uploadMultipart, type MultipartUploadState } from "../ec2/s3-multipart-upload.js";
import { deleteObject } from "../ec2/s3-objects.js";
import { ChromogenicError, WaitFailedError } from "../../util/errors.js";
import { bootModeFor } from "./aws-image.js";
import { architectureFor } from "../ec2/ec2-architecture.js";
import { requireAwsBucket, type AwsSettings } from "./aws-settings.js";
import { startImportImage, waitForImportImage } from "./import-image-task.js";
import { checkVmImportable, type VmImportDisk } from "./vm-import-requirements.js";

const GIB = 1024 ** 3;
/** Where uploads for import go in the bucket. */
export const IMPORT_PREFIX = "chromogenic-imports/";

export interface ImportWriteContext {
  readonly ec2: Ec2Connection;
  readonly s3: S3Connection;
  readonly settings: AwsSettings;
  readonly label: string;
}

/** What the AMI is registered with once imported (the EBS direct path's choices). */
export interface ImportedAmiChoices {
  readonly rootVolumeSizeGiB: number;
  readonly enaSupport: boolean;
}

/**
 * VM Import's requirements for the disk as the request describes it: raw, its size, the boot mode the guest
 * needs, and the architecture and distribution Glance-style properties name.
 */
export function vmImportDiskOf(request: UploadImageRequest & { sizeBytes: number }): VmImportDisk {
  const bootMode = importBootMode(request);
  const properties = request.properties ?? {};
  const distro = properties.os_distro;
  return {
    diskFormat: "raw",
    virtualSizeBytes: request.sizeBytes,
    fileSizeBytes: request.sizeBytes,
    ...(bootMode ? { bootMode } : {}),
    ...(properties.architecture ? { architecture: properties.architecture } : {}),
    ...(distro
      ? {
          os: {
            type: distro.toLowerCase() === "windows" ? "windows" : "linux",
            distro,
            ...(properties.os_version ? { version: properties.os_version } : {}),
          },
        }
      : {}),
  };
}

/**
 * ImportImage's BootMode: a disk with both loaders is left to VM Import (which refuses "uefi-preferred"), one
 * with a single loader is imported for it.
 */
function importBootMode(request: UploadImageRequest): "legacy-bios" | "uefi" | undefined {
  const mode = bootModeFor(request);
  return mode === "uefi-preferred" ? undefined : mode;
}

/** Uploads `data`, imports it and returns the new AMI's id (registered under `request.name`). */
export async function importAmi(
  context: ImportWriteContext,
  request: UploadImageRequest & { sizeBytes: number },
  data: AsyncIterable<Uint8Array>,
  options: UploadOptions,
  choices: ImportedAmiChoices,
): Promise<string> {
  const { ec2, s3, settings, label } = context;
  const { signal } = options;
  // Before anything is made or moved: a disk VM Import would refuse is refused now.
  checkVmImportable(vmImportDiskOf(request), `${label}: the disk for "${request.name}"`);
  const bucket = requireAwsBucket(settings, "--aws-write-via import");
  // In the cloud's region: VM Import/Export reads and writes only buckets in the task's region.
  await ensureBucket(s3, bucket, signal, s3.settings.region);
  const key = `${IMPORT_PREFIX}${safeKeyPart(request.name)}-${randomBytes(6).toString("hex")}.raw`;
  const made: { imageIds: string[]; snapshotIds: string[] } = { imageIds: [], snapshotIds: [] };
  let succeeded = false;
  let upload: MultipartUploadState | undefined;
  try {
    // Recorded before any byte moves: a job that dies mid-upload deletes the object (AwsProvider.deleteImage).
    await options.onCreated?.(uploadLocation(bucket, key));
    await uploadMultipart(s3, bucket, key, counted(data, request.sizeBytes, options.onProgress), {
      ...(signal ? { signal } : {}),
      onFailure: options.keepOnFailure ? "keep" : "abort",
      onState: (state) => {
        upload = state;
      },
    });
    upload = undefined;
    const bootMode = importBootMode(request);
    const architecture = architectureFor(request.properties, request.guest?.architecture);
    // Not cancelled half way: a task AWS started whose id never arrived could not be cancelled. A
    // cancellation is seen by the wait, which cancels the task.
    const taskId = await startImportImage(ec2, {
      disks: [{ format: "RAW", bucket, key }],
      ...(bootMode ? { bootMode } : {}),
      // arm64 was refused above: VM Import does not take it.
      ...(architecture !== "arm64" ? { architecture } : {}),
      roleName: settings.vmImportRole,
      description: `chromogenic: ${request.name}`,
    });
    const imported = await waitForImportImage(ec2, taskId, {
      timeoutMs: waitBoundMs("import", request.sizeBytes / GIB),
      intervalMs: settings.taskPollMs,
      ...(signal ? { signal } : {}),
    }).catch((e: unknown) => {
      // The task's end with AWS's status message ("ClientError: …"), said as what it means for the user.
      if (!(e instanceof WaitFailedError)) throw e;
      throw new ChromogenicError(`${label}: VM Import did not import "${request.name}": ${e.message}`, "EIMPORT", {
        cause: e,
      });
    });
    made.imageIds.push(imported.imageId!);
    made.snapshotIds.push(...imported.snapshotIds);
    const taskAmi = await describeImage(ec2, imported.imageId!, signal);
    const root = taskAmi.blockDeviceMappings.find((m) => m.deviceName === taskAmi.rootDeviceName);
    const snapshotId = root?.snapshotId ?? imported.snapshotIds[0]!;
    // Registered as the EBS direct path registers it: a disk with both loaders as uefi-preferred.
    const registeredMode = bootModeFor(request);
    const imageId = await registerImage(ec2, {
      name: request.name,
      description: request.properties?.description ?? `made by chromogenic (VM Import ${taskId})`,
      snapshotId,
      rootDeviceName: taskAmi.rootDeviceName ?? "/dev/sda1",
      architecture,
      virtualizationType: "hvm",
      rootVolumeSizeGiB: Math.max(choices.rootVolumeSizeGiB, root?.volumeSizeGiB ?? 0),
      rootVolumeType: "gp3",
      ...(registeredMode ? { bootMode: registeredMode } : {}),
      enaSupport: choices.enaSupport,
      ...(signal ? { signal } : {}),
    });
    made.imageIds.push(imageId);
    await options.onCreated?.(imageId);
    await deregisterImage(ec2, taskAmi.id, signal);
    succeeded = true;
    return imageId;
  } finally {
    if (succeeded || !options.keepOnFailure) {
      await deleteObject(s3, bucket, key).catch(() => undefined);
      // A cancelled multipart upload is kept by uploadMultipart for a resume this path does not make.
      if (upload) await abortMultipartUpload(s3, upload).catch(() => undefined);
    }
    if (!succeeded && !options.keepOnFailure) {
      for (const id of made.imageIds) await deregisterImage(ec2, id).catch(() => undefined);
      for (const id of made.snapshotIds) await deleteSnapshot(ec2, id).catch(() => undefined);
    }
  }
}

/** The object's address as a job records it, for its removal after a crash. */
export function uploadLocation(bucket: string, key: string): string {
  return `s3://${bucket}/${key}`;
}

/** The bucket and key of an upload's address, when it is one (only keys this module makes are taken). */
export function parseUploadLocation(id: string): { bucket: string; key: string } | undefined {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(id);
  if (!m || !m[2]!.startsWith(IMPORT_PREFIX) || m[2]!.includes("..")) return undefined;
  return { bucket: m[1]!, key: m[2]! };
}

/** The image's name as part of an object key: letters, digits and a few marks, at most 100 characters. */
function safeKeyPart(name: string): string {
  return (name.replace(/[^A-Za-z0-9._-]+/g, "-").slice(0, 100) || "image").replace(/^[.-]+/, "image");
}

/** `data` as it passes, counted for the progress callback. */
async function* counted(
  data: AsyncIterable<Uint8Array>,
  total: number,
  onProgress: UploadOptions["onProgress"],
): AsyncIterable<Uint8Array> {
  let sent = 0;
  for await (const chunk of data) {
    sent += chunk.byteLength;
    onProgress?.(sent, total);
    yield chunk;
  }
}
