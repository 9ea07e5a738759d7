/**
 * The state of one AWS account as the test servers written from the AWS API reference share it: the EBS
 * direct APIs' server stores snapshot blocks here, the EC2 server registers images of those snapshots, runs
 * export/import/store tasks over them, and the STS/IMDS servers hand out the keys checked here. Nothing here
 * speaks HTTP; each server maps its API onto these records.
 *
 * Sizes follow the EBS direct APIs reference: blocks of 512 KiB, volume sizes in GiB
 * (https://docs.aws.amazon.com/ebs/latest/APIReference/API_StartSnapshot.html).
 */
import { createHash, randomBytes } from "node:crypto";
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import type { SigningSecret } from "./sigv4-verify.js";

export const EBS_BLOCK_SIZE = 512 * 1024;
export const GIB = 1024 ** 3;
const ZERO_BLOCK = Buffer.alloc(EBS_BLOCK_SIZE);

export interface FakeSnapshot {
  readonly id: string;
  volumeSizeGiB: number;
  /** The EC2 states: pending while blocks are written, completed after CompleteSnapshot, error. */
  status: "pending" | "completed" | "error";
  /** Written blocks by index; an absent index reads as zeros and is not listed. */
  readonly blocks: Map<number, Buffer>;
  description?: string;
  parentSnapshotId?: string;
  readonly tags: Record<string, string>;
  readonly startTime: Date;
  readonly ownerId: string;
}

export interface FakeBlockDevice {
  readonly deviceName: string;
  readonly snapshotId?: string;
  readonly volumeSizeGiB?: number;
  readonly virtualName?: string;
  readonly volumeType?: string;
  readonly deleteOnTermination?: boolean;
}

export interface FakeImage {
  readonly id: string;
  name: string;
  description?: string;
  state: "pending" | "available" | "failed" | "deregistered";
  readonly rootDeviceName: string;
  readonly rootDeviceType: "ebs" | "instance-store";
  readonly blockDevices: FakeBlockDevice[];
  readonly architecture: string;
  readonly virtualizationType: "hvm" | "paravirtual";
  bootMode?: "legacy-bios" | "uefi" | "uefi-preferred";
  enaSupport?: boolean;
  /** "v2.0" when the image requires IMDSv2. */
  imdsSupport?: string;
  readonly productCodes: string[];
  /** An instance-store image's manifest, "bucket/prefix.manifest.xml". */
  readonly imageLocation?: string;
  readonly ownerId: string;
  readonly creationDate: Date;
  readonly launchPermissions: Set<string>;
}

export interface FakeInstance {
  readonly id: string;
  state: "running" | "stopped" | "stopping" | "pending" | "terminated";
  readonly rootDeviceName: string;
  /** The root volume's contents, as a snapshot of it would hold them. */
  readonly rootVolume: { readonly sizeGiB: number; readonly blocks: Map<number, Buffer> };
  readonly architecture: string;
  readonly bootMode?: "legacy-bios" | "uefi";
}

/** An asynchronous task (ExportImage, ImportImage, ImportSnapshot, CreateStoreImageTask) as its Describe call shows it. */
export interface FakeTask {
  readonly id: string;
  readonly kind: "export-image" | "import-image" | "import-snapshot" | "store-image";
  status: string;
  statusMessage?: string;
  progress?: string;
  /** Whatever the task's server keeps (its S3 location, the image or snapshot it made). */
  readonly details: Record<string, unknown>;
}

export class FakeAwsAccount {
  readonly accountId: string;
  readonly region: string;
  readonly credentials = new Map<string, SigningSecret>();
  readonly snapshots = new Map<string, FakeSnapshot>();
  readonly images = new Map<string, FakeImage>();
  readonly instances = new Map<string, FakeInstance>();
  readonly tasks = new Map<string, FakeTask>();
  /** The servers' clock: tests move it forward to expire a session. */
  now: () => number = Date.now;

  constructor(options: { accountId?: string; region?: string } = {}) {
    this.accountId = options.accountId ?? "123456789012";
    this.region = options.region ?? "us-east-1";
  }

  /**
   * A new access key (long-term unless `expiresAt` is given) and its secret; `as` gives both (the keys of the
   * test Swift's user, so one AWS identity signs for EC2 and for S3 alike).
   */
  addCredential(
    options: {
      sessionToken?: boolean;
      expiresAt?: number;
      as?: { readonly accessKeyId: string; readonly secretAccessKey: string };
    } = {},
  ): {
    accessKeyId: string;
    secretAccessKey: string;
    sessionToken?: string;
    expiration?: Date;
  } {
    const accessKeyId =
      options.as?.accessKeyId ??
      (options.sessionToken ? "ASIA" : "AKIA") + randomBytes(8).toString("hex").toUpperCase();
    const secretAccessKey = options.as?.secretAccessKey ?? randomBytes(20).toString("base64");
    const sessionToken = options.sessionToken ? randomBytes(48).toString("base64") : undefined;
    this.credentials.set(accessKeyId, {
      secretAccessKey,
      ...(sessionToken ? { sessionToken } : {}),
      ...(options.expiresAt !== undefined ? { expiresAt: options.expiresAt } : {}),
    });
    return {
      accessKeyId,
      secretAccessKey,
      ...(sessionToken ? { sessionToken } : {}),
      ...(options.expiresAt !== undefined ? { expiration: new Date(options.expiresAt) } : {}),
    };
  }

  /** An id in AWS's shape: `snap-` and 17 hex digits. */
  newId(prefix: string): string {
    return `${prefix}-${randomBytes(9).toString("hex").slice(0, 17)}`;
  }

  /** A completed snapshot holding `disk` (a raw disk image), zero blocks left unwritten as EBS leaves them. */
  addSnapshotOf(disk: Buffer, options: { volumeSizeGiB?: number; description?: string } = {}): FakeSnapshot {
    const volumeSizeGiB = options.volumeSizeGiB ?? Math.max(1, Math.ceil(disk.length / GIB));
    const snapshot: FakeSnapshot = {
      id: this.newId("snap"),
      volumeSizeGiB,
      status: "completed",
      blocks: blocksOf(disk),
      ...(options.description ? { description: options.description } : {}),
      tags: {},
      startTime: new Date(this.now()),
      ownerId: this.accountId,
    };
    this.snapshots.set(snapshot.id, snapshot);
    return snapshot;
  }

  /**
   * A completed snapshot of the raw disk in the file at `path`, read a block at a time (for disks too large
   * to hold whole, the benchmark's 4 GiB one); only its non-zero blocks are kept.
   */
  addSnapshotOfFile(path: string, options: { volumeSizeGiB?: number; description?: string } = {}): FakeSnapshot {
    const fd = openSync(path, "r");
    try {
      const size = fstatSync(fd).size;
      const blocks = new Map<number, Buffer>();
      const buffer = Buffer.alloc(EBS_BLOCK_SIZE);
      for (let i = 0; i * EBS_BLOCK_SIZE < size; i++) {
        buffer.fill(0);
        readSync(fd, buffer, 0, Math.min(EBS_BLOCK_SIZE, size - i * EBS_BLOCK_SIZE), i * EBS_BLOCK_SIZE);
        if (!buffer.equals(ZERO_BLOCK)) blocks.set(i, Buffer.from(buffer));
      }
      const snapshot = this.addSnapshotOf(Buffer.alloc(0), {
        volumeSizeGiB: options.volumeSizeGiB ?? Math.max(1, Math.ceil(size / GIB)),
        ...(options.description ? { description: options.description } : {}),
      });
      for (const [index, data] of blocks) snapshot.blocks.set(index, data);
      return snapshot;
    } finally {
      closeSync(fd);
    }
  }

  /**
   * An available EBS-backed AMI of a raw disk file, as RegisterImage would have made it: its root /dev/xvda a
   * new snapshot of the file in a 1 GiB volume, x86_64, HVM.
   */
  addImageOfFile(
    path: string,
    name: string,
    bootMode: FakeImage["bootMode"],
    fields: Partial<Pick<FakeImage, "architecture" | "description">> = {},
  ): FakeImage {
    const snapshot = this.addSnapshotOfFile(path, { volumeSizeGiB: 1 });
    const image: FakeImage = {
      id: this.newId("ami"),
      name,
      state: "available",
      rootDeviceName: "/dev/xvda",
      rootDeviceType: "ebs",
      blockDevices: [{ deviceName: "/dev/xvda", snapshotId: snapshot.id, volumeSizeGiB: 1 }],
      architecture: "x86_64",
      virtualizationType: "hvm",
      ...(bootMode ? { bootMode } : {}),
      productCodes: [],
      ownerId: this.accountId,
      creationDate: new Date(),
      launchPermissions: new Set(),
      ...fields,
    };
    this.images.set(image.id, image);
    return image;
  }

  /** The raw disk a snapshot holds, `volumeSizeGiB` long (only for small test volumes: it is all in memory). */
  snapshotBytes(id: string): Buffer {
    const snapshot = this.snapshots.get(id);
    if (!snapshot) throw new Error(`no snapshot ${id}`);
    const out = Buffer.alloc(snapshot.volumeSizeGiB * GIB);
    for (const [index, data] of snapshot.blocks) data.copy(out, index * EBS_BLOCK_SIZE);
    return out;
  }
}

/** The non-zero 512 KiB blocks of a raw disk, by index. */
export function blocksOf(disk: Buffer): Map<number, Buffer> {
  const blocks = new Map<number, Buffer>();
  for (let i = 0; i * EBS_BLOCK_SIZE < disk.length; i++) {
    const block = Buffer.alloc(EBS_BLOCK_SIZE);
    disk.copy(block, 0, i * EBS_BLOCK_SIZE, Math.min(disk.length, (i + 1) * EBS_BLOCK_SIZE));
    // equals() is a memcmp; a byte-by-byte callback took 20 s over a 1 GiB disk.
    if (!block.equals(ZERO_BLOCK)) blocks.set(i, block);
  }
  return blocks;
}

/** A block's checksum as the EBS direct APIs carry it: SHA-256, base64. */
export function blockChecksum(data: Buffer): string {
  return createHash("sha256").update(data).digest("base64");
}
