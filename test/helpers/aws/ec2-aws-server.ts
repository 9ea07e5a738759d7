/**
 * An EC2 Query API server written from the Amazon EC2 API Reference, for the calls no open implementation has
 * (the image tasks) and for AWS's side of the image calls: form-encoded POSTs, each SigV4-checked for service
 * "ec2" against a FakeAwsAccount (verifySigV4), replies in the 2016-11-15 namespace, errors in EC2's shape
 * (<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>). It is a test server:
 * what AWS does that these tests do not look at (tags, KMS, regions, dry runs) is not done.
 *
 * Actions and the reference pages they follow (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/…):
 *  - API_DescribeImages.html (ImageId.N, Owner.N, Filter.N owner-id / image-id / name with * and ?,
 *    MaxResults/NextToken), API_RegisterImage.html (EBS root from a completed snapshot, BootMode, EnaSupport,
 *    ImdsSupport, BlockDeviceMapping.N.Ebs.*; or an instance-store AMI from ImageLocation, "the full path to
 *    your AMI manifest in Amazon S3": the manifest is fetched from S3 once at registration, the architecture
 *    defaults to the manifest's, VirtualizationType to paravirtual; a manifest that cannot be read or parsed is
 *    InvalidManifest, errors-overview.html), API_DeregisterImage.html, API_ModifyImageAttribute.html and
 *    API_DescribeImageAttribute.html (launchPermission), API_CreateImage.html (NoReboot; a snapshot of the
 *    instance's root volume, the image pending until it completes), API_DescribeInstances.html,
 *    API_DescribeVolumes.html (VolumeId.N; an instance's root volume only);
 *  - API_DescribeSnapshots.html (SnapshotId.N, MaxResults/NextToken), API_DeleteSnapshot.html
 *    (InvalidSnapshot.InUse while a registered image uses it);
 *  - API_ExportImage.html, API_DescribeExportImageTasks.html, API_CancelExportTask.html: the object is written
 *    at PREFIX + task id + "." + format (VM Import/Export User Guide, start-image-export.html), RAW as is,
 *    VMDK (stream-optimized) and VHD through `qemu-img convert`;
 *  - API_ImportImage.html, API_ImportSnapshot.html, API_DescribeImportImageTasks.html,
 *    API_DescribeImportSnapshotTasks.html, API_CancelImportTask.html: the object is read from S3, converted to
 *    raw with qemu-img, stored as a snapshot (and an AMI for ImportImage); an object that is missing or not
 *    the declared format ends the task "deleted" with a "ClientError: …" status message, as VM Import reports
 *    it (User Guide, check-import-task-status.html); statuses move active (pending, converting, updating,
 *    booting, preparing ami) → completed, one step per Describe;
 *  - API_CreateStoreImageTask.html, API_DescribeStoreImageTasks.html, API_CreateRestoreImageTask.html: the
 *    object is this server's own opaque archive (JSON), read back only by CreateRestoreImageTask;
 *  - errors: Errors/error-codes (errors-overview.html): InvalidAMIID.NotFound, InvalidSnapshot.NotFound,
 *    InvalidSnapshot.InUse, InvalidInstanceID.NotFound, InvalidManifest, InvalidParameterValue, MissingParameter,
 *    IncorrectState, InvalidExportTaskID.NotFound, InvalidConversionTaskId, RequestLimitExceeded (HTTP 503,
 *    Query API request rate: throttling.html).
 *
 * S3 is the real Swift s3api of test/helpers/swift-s3.ts, through the S3Connection the test gives.
 */
import { GetObjectCommand, PutObjectCommand, type GetObjectCommandOutput } from "@aws-sdk/client-s3";
import { once } from "node:events";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, mkdtemp, rm, stat } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { randomUUID } from "node:crypto";
import { Ec2Connection } from "../../../src/providers/ec2/ec2-connection.js";
import type { S3Connection } from "../../../src/providers/ec2/s3-connection.js";
import { run } from "../tools.js";
import { GIB, type FakeAwsAccount, type FakeImage, type FakeTask } from "./fake-aws-account.js";
import { readRawBlocks, writeSnapshotRaw } from "./snapshot-raw.js";
import { verifySigV4 } from "./sigv4-verify.js";

export const EC2_NAMESPACE = "http://ec2.amazonaws.com/doc/2016-11-15/";
const API_VERSION = "2016-11-15";
/** Bodies beyond this are refused: every EC2 Query request is small. */
const MAX_BODY = 1024 * 1024;

export interface Ec2AwsServerOptions {
  /** Where export tasks write and import tasks read (Swift's s3api). */
  readonly s3?: S3Connection;
  /** How many Describe calls a pending image, snapshot or task stays in each status (default 1). */
  readonly pollsPerStep?: number;
  /** Default page size of the Describe calls that paginate (default 1000, AWS's largest). */
  readonly defaultPageSize?: number;
}

export interface Ec2AwsRequest {
  readonly action: string;
  readonly params: URLSearchParams;
  readonly accessKeyId?: string;
}

class Ec2Fault extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

/** The statuses a task goes through before it ends, as its Describe call shows them. */
const STEPS: Readonly<Record<FakeTask["kind"], readonly { status: string; message?: string; progress: string }[]>> = {
  "export-image": [
    { status: "active", message: "validating", progress: "0" },
    { status: "active", message: "converting", progress: "30" },
    { status: "active", message: "exporting", progress: "80" },
  ],
  "import-image": [
    { status: "active", message: "pending", progress: "2" },
    { status: "active", message: "converting", progress: "28" },
    { status: "active", message: "updating", progress: "56" },
    { status: "active", message: "booting", progress: "70" },
    { status: "active", message: "preparing ami", progress: "90" },
  ],
  "import-snapshot": [
    { status: "active", message: "pending", progress: "3" },
    { status: "active", message: "converting", progress: "40" },
  ],
  "store-image": [
    { status: "InProgress", progress: "10" },
    { status: "InProgress", progress: "60" },
  ],
};

export class Ec2AwsServer {
  readonly requests: Ec2AwsRequest[] = [];
  /** CreateImage calls as received: which instance, and whether NoReboot was asked. */
  readonly createImageCalls: { imageId: string; instanceId: string; noReboot: boolean }[] = [];
  /** The URL to give Ec2Connection. */
  url = "";
  private server: Server | undefined;
  private throttled = 0;
  private importFailure: string | undefined;
  private readonly pollsPerStep: number;
  private readonly pageSize: number;
  /** Pending images and snapshots (from CreateImage): Describe calls seen of each. */
  private readonly pendingPolls = new Map<string, number>();
  private readonly taskPolls = new Map<string, number>();

  constructor(
    readonly account: FakeAwsAccount,
    private readonly options: Ec2AwsServerOptions = {},
  ) {
    this.pollsPerStep = options.pollsPerStep ?? 1;
    this.pageSize = options.defaultPageSize ?? 1000;
  }

  /**
   * The next import task (ImportImage or ImportSnapshot) ends "deleted" with "ClientError: `reason`" once it
   * has gone through its steps, as VM Import ends one whose guest it cannot handle (e.g. "Unknown OS / Missing
   * OS files.", User Guide, check-import-task-status.html); nothing is made.
   */
  failNextImport(reason: string): void {
    this.importFailure = reason;
  }

  /** The next `n` requests are refused with RequestLimitExceeded (a throttling storm). */
  throttleNext(n: number): void {
    this.throttled = n;
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.listen(0, "127.0.0.1");
    await once(this.server, "listening");
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
    return this.url;
  }

  async close(): Promise<void> {
    if (this.server) await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }

  /** An Ec2Connection to this server with a new key of the account. */
  connection(): Ec2Connection {
    const key = this.account.addCredential();
    return new Ec2Connection({
      name: "aws-test",
      kind: "ec2",
      source: "test",
      ec2Url: this.url,
      region: this.account.region,
      accessKeyId: key.accessKeyId,
      secretAccessKey: key.secretAccessKey,
      tls: { verify: true },
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = randomUUID();
    const chunks: Buffer[] = [];
    let length = 0;
    for await (const chunk of req) {
      length += (chunk as Buffer).length;
      if (length > MAX_BODY)
        return this.fail(res, requestId, new Ec2Fault("RequestEntityTooLarge", "request too large", 413));
      chunks.push(chunk as Buffer);
    }
    const body = Buffer.concat(chunks);
    const params = new URLSearchParams(body.toString());
    const action = params.get("Action") ?? "";
    try {
      const verdict = await verifySigV4(
        { method: req.method ?? "", url: req.url ?? "/", headers: req.headers, body },
        "ec2",
        (id) => this.account.credentials.get(id),
        this.account.now(),
      );
      this.requests.push({ action, params, ...(verdict.ok ? { accessKeyId: verdict.accessKeyId } : {}) });
      if (!verdict.ok) throw new Ec2Fault(verdict.code, verdict.message, verdict.status);
      if (req.method !== "POST") throw new Ec2Fault("InvalidAction", "EC2 Query requests are POSTs here");
      if (this.throttled > 0) {
        this.throttled--;
        throw new Ec2Fault("RequestLimitExceeded", "Request limit exceeded.", 503);
      }
      if (params.get("Version") !== API_VERSION) {
        throw new Ec2Fault("InvalidParameterValue", `Version ${params.get("Version")} is not ${API_VERSION}`);
      }
      const handler = this.actions[action];
      if (!handler) throw new Ec2Fault("InvalidAction", `The action ${action} is not valid for this web service.`);
      const inner = await handler(params);
      res.writeHead(200, { "content-type": "text/xml;charset=UTF-8" });
      res.end(
        `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${EC2_NAMESPACE}">` +
          `<requestId>${requestId}</requestId>${inner}</${action}Response>`,
      );
    } catch (e) {
      this.fail(res, requestId, e instanceof Ec2Fault ? e : new Ec2Fault("InternalError", String(e), 500));
    }
  }

  private fail(res: ServerResponse, requestId: string, fault: Ec2Fault): void {
    res.writeHead(fault.status, { "content-type": "text/xml;charset=UTF-8" });
    res.end(
      `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${esc(fault.code)}</Code>` +
        `<Message>${esc(fault.message)}</Message></Error></Errors><RequestID>${requestId}</RequestID></Response>`,
    );
  }

  private readonly actions: Record<string, (p: URLSearchParams) => string | Promise<string>> = {
    DescribeImages: (p) => this.describeImages(p),
    RegisterImage: (p) => this.registerImage(p),
    DeregisterImage: (p) => {
      const image = this.image(required(p, "ImageId"));
      image.state = "deregistered";
      this.account.images.delete(image.id);
      return "<return>true</return>";
    },
    ModifyImageAttribute: (p) => this.modifyImageAttribute(p),
    DescribeImageAttribute: (p) => {
      const image = this.image(required(p, "ImageId"));
      if (p.get("Attribute") !== "launchPermission")
        throw new Ec2Fault("InvalidParameterValue", "only launchPermission");
      const items = [...image.launchPermissions].map((who) =>
        who === "all" ? "<item><group>all</group></item>" : `<item><userId>${esc(who)}</userId></item>`,
      );
      return `<imageId>${image.id}</imageId><launchPermission>${items.join("")}</launchPermission>`;
    },
    CreateImage: (p) => this.createImage(p),
    DescribeInstances: (p) => this.describeInstances(p),
    DescribeVolumes: (p) => this.describeVolumes(p),
    DescribeSnapshots: (p) => this.describeSnapshots(p),
    DeleteSnapshot: (p) => {
      const id = required(p, "SnapshotId");
      if (!this.account.snapshots.has(id)) throw notFoundSnapshot(id);
      const user = [...this.account.images.values()].find((i) => i.blockDevices.some((d) => d.snapshotId === id));
      if (user) throw new Ec2Fault("InvalidSnapshot.InUse", `The snapshot ${id} is currently in use by ${user.id}`);
      this.account.snapshots.delete(id);
      return "<return>true</return>";
    },
    ExportImage: (p) => this.exportImage(p),
    DescribeExportImageTasks: (p) => this.describeTasks(p, "export-image", "ExportImageTaskId", "exportImageTaskSet"),
    CancelExportTask: (p) => {
      const task = this.account.tasks.get(required(p, "ExportTaskId"));
      if (!task || task.kind !== "export-image")
        throw new Ec2Fault(
          "InvalidExportTaskID.NotFound",
          `The export task ID '${p.get("ExportTaskId")}' does not exist`,
        );
      if (task.status !== "active") throw new Ec2Fault("IncorrectState", `Export task ${task.id} is ${task.status}`);
      task.status = "deleted";
      task.statusMessage = "Canceled by user";
      return "<return>true</return>";
    },
    ImportImage: (p) => this.importTask(p, "import-image"),
    ImportSnapshot: (p) => this.importTask(p, "import-snapshot"),
    DescribeImportImageTasks: (p) => this.describeTasks(p, "import-image", "ImportTaskId", "importImageTaskSet"),
    DescribeImportSnapshotTasks: (p) =>
      this.describeTasks(p, "import-snapshot", "ImportTaskId", "importSnapshotTaskSet"),
    CancelImportTask: (p) => {
      const id = required(p, "ImportTaskId");
      const task = this.account.tasks.get(id);
      if (!task || (task.kind !== "import-image" && task.kind !== "import-snapshot")) {
        throw new Ec2Fault("InvalidConversionTaskId", `The import task ${id} does not exist`);
      }
      if (task.status !== "active") throw new Ec2Fault("IncorrectState", `Import task ${id} is ${task.status}`);
      task.status = "deleted";
      task.statusMessage = "User initiated task cancelation";
      return `<importTaskId>${id}</importTaskId><previousState>active</previousState><state>deleting</state>`;
    },
    CreateStoreImageTask: (p) => this.createStoreImageTask(p),
    DescribeStoreImageTasks: (p) => this.describeStoreImageTasks(p),
    CreateRestoreImageTask: (p) => this.createRestoreImageTask(p),
  };

  // ---- images ----

  private image(id: string): FakeImage {
    const image = this.account.images.get(id);
    if (!image) throw new Ec2Fault("InvalidAMIID.NotFound", `The image id '[${id}]' does not exist`);
    return image;
  }

  private describeImages(p: URLSearchParams): string {
    const ids = list(p, "ImageId");
    const owners = list(p, "Owner");
    const filters = filterList(p);
    if (ids.length && (p.get("MaxResults") || p.get("NextToken"))) {
      throw new Ec2Fault("InvalidParameterCombination", "MaxResults cannot be given with image IDs");
    }
    for (const id of ids) this.image(id);
    let images = [...this.account.images.values()];
    if (ids.length) images = images.filter((i) => ids.includes(i.id));
    if (owners.length) {
      images = images.filter((i) =>
        owners.some((o) => (o === "self" ? i.ownerId === this.account.accountId : o === i.ownerId)),
      );
    }
    for (const [name, values] of filters) {
      const field = (i: FakeImage) =>
        name === "owner-id" ? i.ownerId : name === "image-id" ? i.id : name === "name" ? i.name : undefined;
      if (!["owner-id", "image-id", "name"].includes(name))
        throw new Ec2Fault("InvalidParameterValue", `The filter '${name}' is invalid`);
      images = images.filter((i) => values.some((v) => wildcard(v).test(field(i) ?? "")));
    }
    for (const image of images) this.advancePendingImage(image);
    const page = this.paginate(p, images, "DescribeImages");
    return `<imagesSet>${page.items.map((i) => this.imageXml(i)).join("")}</imagesSet>${page.next}`;
  }

  private imageXml(i: FakeImage): string {
    const mappings = i.blockDevices
      .map(
        (d) =>
          `<item><deviceName>${esc(d.deviceName)}</deviceName>` +
          (d.virtualName ? `<virtualName>${esc(d.virtualName)}</virtualName>` : "") +
          (d.snapshotId
            ? `<ebs><snapshotId>${d.snapshotId}</snapshotId>${tag("volumeSize", d.volumeSizeGiB)}` +
              `${tag("deleteOnTermination", d.deleteOnTermination ?? true)}${tag("volumeType", d.volumeType ?? "gp2")}` +
              `<encrypted>false</encrypted></ebs>`
            : "") +
          `</item>`,
      )
      .join("");
    const codes = i.productCodes
      .map((c) => `<item><productCode>${esc(c)}</productCode><type>marketplace</type></item>`)
      .join("");
    return (
      `<item><imageId>${i.id}</imageId>${tag("imageLocation", i.imageLocation ?? `${i.ownerId}/${i.name}`)}` +
      `<imageState>${i.state}</imageState><imageOwnerId>${i.ownerId}</imageOwnerId>` +
      `<creationDate>${i.creationDate.toISOString()}</creationDate>` +
      `<isPublic>${i.launchPermissions.has("all")}</isPublic><architecture>${esc(i.architecture)}</architecture>` +
      `<imageType>machine</imageType>${tag("name", i.name)}${tag("description", i.description)}` +
      `<rootDeviceType>${i.rootDeviceType}</rootDeviceType><rootDeviceName>${esc(i.rootDeviceName)}</rootDeviceName>` +
      `<blockDeviceMapping>${mappings}</blockDeviceMapping><productCodes>${codes}</productCodes>` +
      `<virtualizationType>${i.virtualizationType}</virtualizationType>${tag("bootMode", i.bootMode)}` +
      `${tag("enaSupport", i.enaSupport)}${tag("imdsSupport", i.imdsSupport)}</item>`
    );
  }

  private registerImage(p: URLSearchParams): string | Promise<string> {
    const name = required(p, "Name");
    const location = p.get("ImageLocation");
    if (location) return this.registerBundleImage(name, location, p);
    const rootDeviceName = required(p, "RootDeviceName");
    if ([...this.account.images.values()].some((i) => i.name === name && i.ownerId === this.account.accountId)) {
      throw new Ec2Fault("InvalidAMIName.Duplicate", `AMI name ${name} is already in use by AMI`);
    }
    const bootMode = p.get("BootMode") ?? undefined;
    if (bootMode && !["legacy-bios", "uefi", "uefi-preferred"].includes(bootMode)) {
      throw new Ec2Fault("InvalidParameterValue", `Value (${bootMode}) for parameter BootMode is invalid.`);
    }
    const architecture = p.get("Architecture") ?? "x86_64";
    if (!["i386", "x86_64", "arm64", "x86_64_mac", "arm64_mac"].includes(architecture)) {
      throw new Ec2Fault("InvalidParameterValue", `Value (${architecture}) for parameter Architecture is invalid.`);
    }
    const imds = p.get("ImdsSupport") ?? undefined;
    if (imds !== undefined && imds !== "v2.0") {
      throw new Ec2Fault("InvalidParameterValue", `Value (${imds}) for parameter ImdsSupport is invalid.`);
    }
    const devices = indexes(p, "BlockDeviceMapping").map((n) => {
      const at = (k: string) => p.get(`BlockDeviceMapping.${n}.${k}`) ?? undefined;
      const snapshotId = at("Ebs.SnapshotId");
      const size = at("Ebs.VolumeSize");
      const deviceName = at("DeviceName");
      if (!deviceName) throw new Ec2Fault("MissingParameter", `BlockDeviceMapping.${n}.DeviceName is missing`);
      if (snapshotId) {
        const snapshot = this.account.snapshots.get(snapshotId);
        if (!snapshot) throw notFoundSnapshot(snapshotId);
        if (snapshot.status !== "completed") {
          throw new Ec2Fault("IncorrectState", `Snapshot '${snapshotId}' is not 'completed'`);
        }
        if (size !== undefined && Number(size) < snapshot.volumeSizeGiB) {
          throw new Ec2Fault(
            "InvalidBlockDeviceMapping",
            `Volume of size ${size}GB is smaller than snapshot '${snapshotId}', expect size >= ${snapshot.volumeSizeGiB}GB`,
          );
        }
      }
      return {
        deviceName,
        ...(snapshotId ? { snapshotId } : {}),
        ...(snapshotId ? { volumeSizeGiB: Number(size ?? this.account.snapshots.get(snapshotId)!.volumeSizeGiB) } : {}),
        ...(at("VirtualName") ? { virtualName: at("VirtualName")! } : {}),
        ...(at("Ebs.VolumeType") ? { volumeType: at("Ebs.VolumeType")! } : {}),
        ...(at("Ebs.DeleteOnTermination") ? { deleteOnTermination: at("Ebs.DeleteOnTermination") === "true" } : {}),
      };
    });
    const root = devices.find((d) => d.deviceName === rootDeviceName);
    if (!root?.snapshotId) {
      throw new Ec2Fault("InvalidBlockDeviceMapping", `The root device ${rootDeviceName} has no EBS snapshot mapping`);
    }
    const image = this.addImage({
      name,
      rootDeviceName,
      blockDevices: devices,
      architecture,
      state: "available",
      ...(p.get("Description") ? { description: p.get("Description")! } : {}),
      ...(bootMode ? { bootMode: bootMode as FakeImage["bootMode"] } : {}),
      ...(p.get("EnaSupport") ? { enaSupport: p.get("EnaSupport") === "true" } : {}),
      ...(imds ? { imdsSupport: imds } : {}),
    });
    return `<imageId>${image.id}</imageId>`;
  }

  /**
   * An instance-store AMI of the bundle whose manifest is at BUCKET/KEY (API_RegisterImage.html, ImageLocation):
   * the manifest is read from S3 once, now; the AMI's root is the bundle's image (/dev/sda1, as ec2-bundle-image
   * maps "ami" and "root" by default).
   */
  private async registerBundleImage(name: string, location: string, p: URLSearchParams): Promise<string> {
    const slash = location.indexOf("/");
    const bucket = location.slice(0, Math.max(0, slash));
    const key = location.slice(slash + 1);
    if (slash <= 0 || !key.endsWith(".manifest.xml")) {
      throw new Ec2Fault("InvalidParameterValue", `Invalid image location ${location}: not BUCKET/PATH.manifest.xml`);
    }
    let manifest = "";
    try {
      const out = await this.s3().send<GetObjectCommandOutput>(new GetObjectCommand({ Bucket: bucket, Key: key }), {
        call: "GetObject",
      });
      manifest = await (out.Body as { transformToString(): Promise<string> }).transformToString();
    } catch {
      throw new Ec2Fault("InvalidManifest", `The manifest ${location} cannot be read`);
    }
    const declared = /<machine_configuration>[\s\S]*?<architecture>([^<]+)<\/architecture>/.exec(manifest)?.[1];
    if (!/^\s*(<\?xml[^>]*\?>\s*)?<manifest>/.test(manifest) || !declared) {
      throw new Ec2Fault("InvalidManifest", `The manifest ${location} is not a bundle manifest`);
    }
    if ([...this.account.images.values()].some((i) => i.name === name && i.ownerId === this.account.accountId)) {
      throw new Ec2Fault("InvalidAMIName.Duplicate", `AMI name ${name} is already in use by AMI`);
    }
    const virtualization = p.get("VirtualizationType") ?? "paravirtual";
    if (virtualization !== "hvm" && virtualization !== "paravirtual") {
      throw new Ec2Fault(
        "InvalidParameterValue",
        `Value (${virtualization}) for parameter VirtualizationType is invalid.`,
      );
    }
    const image = this.addImage({
      name,
      rootDeviceName: "/dev/sda1",
      rootDeviceType: "instance-store",
      imageLocation: location,
      virtualizationType: virtualization,
      blockDevices: [],
      architecture: p.get("Architecture") ?? declared,
      state: "available",
      ...(p.get("Description") ? { description: p.get("Description")! } : {}),
    });
    return `<imageId>${image.id}</imageId>`;
  }

  /** A new image of this account, EBS-backed and HVM unless the fields say otherwise. */
  addImage(
    fields: Pick<FakeImage, "name" | "rootDeviceName" | "blockDevices" | "architecture" | "state"> &
      Partial<
        Pick<
          FakeImage,
          | "description"
          | "bootMode"
          | "enaSupport"
          | "imdsSupport"
          | "productCodes"
          | "rootDeviceType"
          | "imageLocation"
          | "virtualizationType"
        >
      >,
  ): FakeImage {
    const image: FakeImage = {
      id: this.account.newId("ami"),
      rootDeviceType: "ebs",
      virtualizationType: "hvm",
      ownerId: this.account.accountId,
      creationDate: new Date(this.account.now()),
      launchPermissions: new Set(),
      productCodes: [],
      ...fields,
    };
    this.account.images.set(image.id, image);
    return image;
  }

  /** An available image whose root device /dev/xvda is made from `snapshotId` (a test's starting point). */
  addImageOf(
    snapshotId: string,
    fields: Partial<Pick<FakeImage, "name" | "architecture" | "bootMode" | "productCodes">> = {},
  ): FakeImage {
    const snapshot = this.account.snapshots.get(snapshotId);
    if (!snapshot) throw new Error(`no snapshot ${snapshotId}`);
    return this.addImage({
      name: `image-of-${snapshotId}`,
      rootDeviceName: "/dev/xvda",
      blockDevices: [{ deviceName: "/dev/xvda", snapshotId, volumeSizeGiB: snapshot.volumeSizeGiB }],
      architecture: "x86_64",
      state: "available",
      ...fields,
    });
  }

  private modifyImageAttribute(p: URLSearchParams): string {
    const image = this.image(required(p, "ImageId"));
    const changes = (op: "Add" | "Remove") =>
      indexes(p, `LaunchPermission.${op}`).map(
        (n) => p.get(`LaunchPermission.${op}.${n}.UserId`) ?? p.get(`LaunchPermission.${op}.${n}.Group`) ?? "",
      );
    const add = changes("Add");
    const remove = changes("Remove");
    if (!add.length && !remove.length) throw new Ec2Fault("MissingParameter", "no launch permission change given");
    for (const who of [...add, ...remove]) {
      if (who !== "all" && !/^\d{12}$/.test(who)) {
        throw new Ec2Fault("InvalidAMIAttributeItemValue", `Invalid attribute item value "${who}" for userId`);
      }
    }
    for (const who of add) image.launchPermissions.add(who);
    for (const who of remove) image.launchPermissions.delete(who);
    return "<return>true</return>";
  }

  private createImage(p: URLSearchParams): string {
    const instanceId = required(p, "InstanceId");
    const name = required(p, "Name");
    const instance = this.account.instances.get(instanceId);
    if (!instance) throw new Ec2Fault("InvalidInstanceID.NotFound", `The instance ID '${instanceId}' does not exist`);
    if ([...this.account.images.values()].some((i) => i.name === name)) {
      throw new Ec2Fault("InvalidAMIName.Duplicate", `AMI name ${name} is already in use by AMI`);
    }
    const snapshot = this.account.addSnapshotOf(Buffer.alloc(0), {
      volumeSizeGiB: instance.rootVolume.sizeGiB,
      description: `Created by CreateImage(${instanceId}) for ${name}`,
    });
    for (const [index, block] of instance.rootVolume.blocks) snapshot.blocks.set(index, Buffer.from(block));
    snapshot.status = "pending";
    this.pendingPolls.set(snapshot.id, 0);
    const image = this.addImage({
      name,
      rootDeviceName: instance.rootDeviceName,
      blockDevices: [
        { deviceName: instance.rootDeviceName, snapshotId: snapshot.id, volumeSizeGiB: instance.rootVolume.sizeGiB },
      ],
      architecture: instance.architecture,
      state: "pending",
      ...(instance.bootMode ? { bootMode: instance.bootMode } : {}),
      ...(p.get("Description") ? { description: p.get("Description")! } : {}),
    });
    this.pendingPolls.set(image.id, 0);
    this.createImageCalls.push({ imageId: image.id, instanceId, noReboot: p.get("NoReboot") === "true" });
    return `<imageId>${image.id}</imageId>`;
  }

  /** A pending image from CreateImage becomes available once its snapshot has completed. */
  private advancePendingImage(image: FakeImage): void {
    if (image.state !== "pending" || !this.pendingPolls.has(image.id)) return;
    const seen = this.pendingPolls.get(image.id)! + 1;
    this.pendingPolls.set(image.id, seen);
    if (seen < this.pollsPerStep * 2) return;
    for (const d of image.blockDevices) {
      const s = d.snapshotId ? this.account.snapshots.get(d.snapshotId) : undefined;
      if (s?.status === "pending") s.status = "completed";
    }
    image.state = "available";
    this.pendingPolls.delete(image.id);
  }

  private describeInstances(p: URLSearchParams): string {
    const ids = list(p, "InstanceId");
    for (const id of ids) {
      if (!this.account.instances.has(id))
        throw new Ec2Fault("InvalidInstanceID.NotFound", `The instance ID '${id}' does not exist`);
    }
    const all = [...this.account.instances.values()].filter((i) => !ids.length || ids.includes(i.id));
    const { items: instances, next } = this.paginate(p, all, "DescribeInstances");
    const codes: Record<string, number> = { pending: 0, running: 16, stopping: 64, stopped: 80, terminated: 48 };
    const items = instances.map(
      (i) =>
        `<item><reservationId>r-${i.id.slice(2)}</reservationId><ownerId>${this.account.accountId}</ownerId>` +
        `<instancesSet><item><instanceId>${i.id}</instanceId>` +
        `<instanceState><code>${codes[i.state] ?? 0}</code><name>${i.state}</name></instanceState>` +
        `<architecture>${i.architecture}</architecture><rootDeviceType>ebs</rootDeviceType>` +
        `<rootDeviceName>${esc(i.rootDeviceName)}</rootDeviceName>${tag("bootMode", i.bootMode)}` +
        `<placement><availabilityZone>${this.account.region}a</availabilityZone></placement>` +
        `<blockDeviceMapping><item><deviceName>${esc(i.rootDeviceName)}</deviceName><ebs>` +
        `<volumeId>vol-${i.id.slice(2)}</volumeId><status>attached</status></ebs></item></blockDeviceMapping>` +
        `</item></instancesSet></item>`,
    );
    return `<reservationSet>${items.join("")}</reservationSet>${next}`;
  }

  /** An instance's root volume is vol-<its id's digits> (as DescribeInstances names it), nothing else exists. */
  private describeVolumes(p: URLSearchParams): string {
    const ids = list(p, "VolumeId");
    const items = [...this.account.instances.values()]
      .filter((i) => !ids.length || ids.includes(`vol-${i.id.slice(2)}`))
      .map(
        (i) =>
          `<item><volumeId>vol-${i.id.slice(2)}</volumeId><size>${i.rootVolume.sizeGiB}</size><snapshotId/>` +
          `<availabilityZone>${this.account.region}a</availabilityZone><status>in-use</status>` +
          `<volumeType>gp3</volumeType><encrypted>false</encrypted></item>`,
      );
    const missing = ids.find((id) => ![...this.account.instances.values()].some((i) => `vol-${i.id.slice(2)}` === id));
    if (missing) throw new Ec2Fault("InvalidVolume.NotFound", `The volume '${missing}' does not exist.`);
    return `<volumeSet>${items.join("")}</volumeSet>`;
  }

  // ---- snapshots ----

  private describeSnapshots(p: URLSearchParams): string {
    const ids = list(p, "SnapshotId");
    for (const id of ids) if (!this.account.snapshots.has(id)) throw notFoundSnapshot(id);
    const owners = list(p, "Owner");
    let snapshots = [...this.account.snapshots.values()].filter((s) => !ids.length || ids.includes(s.id));
    if (owners.length) {
      snapshots = snapshots.filter((s) =>
        owners.some((o) => (o === "self" ? s.ownerId === this.account.accountId : o === s.ownerId)),
      );
    }
    for (const s of snapshots) {
      if (s.status !== "pending" || !this.pendingPolls.has(s.id)) continue;
      const seen = this.pendingPolls.get(s.id)! + 1;
      this.pendingPolls.set(s.id, seen);
      if (seen >= this.pollsPerStep * 2) {
        s.status = "completed";
        this.pendingPolls.delete(s.id);
      }
    }
    const page = this.paginate(p, snapshots, "DescribeSnapshots");
    const items = page.items.map((s) => {
      const progress = s.status === "completed" ? "100%" : `${Math.min(99, 50 * (this.pendingPolls.get(s.id) ?? 0))}%`;
      return (
        `<item><snapshotId>${s.id}</snapshotId><volumeId>vol-ffffffff</volumeId><status>${s.status}</status>` +
        `<startTime>${s.startTime.toISOString()}</startTime><progress>${progress}</progress>` +
        `<ownerId>${s.ownerId}</ownerId><volumeSize>${s.volumeSizeGiB}</volumeSize>` +
        `${tag("description", s.description)}<encrypted>false</encrypted><storageTier>standard</storageTier></item>`
      );
    });
    return `<snapshotSet>${items.join("")}</snapshotSet>${page.next}`;
  }

  // ---- tasks ----

  private newTask(kind: FakeTask["kind"], prefix: string, details: Record<string, unknown>): FakeTask {
    const first = STEPS[kind][0]!;
    const task: FakeTask = {
      id: this.account.newId(prefix),
      kind,
      status: first.status,
      ...(first.message ? { statusMessage: first.message } : {}),
      progress: first.progress,
      details,
    };
    this.account.tasks.set(task.id, task);
    this.taskPolls.set(task.id, 0);
    return task;
  }

  /** One Describe of an unfinished task: it moves a step on, and runs its work when it has gone through all. */
  private async advance(task: FakeTask): Promise<void> {
    const active = task.kind === "store-image" ? task.status === "InProgress" : task.status === "active";
    if (!active) return;
    const seen = (this.taskPolls.get(task.id) ?? 0) + 1;
    this.taskPolls.set(task.id, seen);
    const steps = STEPS[task.kind];
    const at = Math.floor((seen - 1) / this.pollsPerStep);
    if (at < steps.length) {
      const step = steps[at]!;
      task.status = step.status;
      task.progress = step.progress;
      if (step.message) task.statusMessage = step.message;
      return;
    }
    try {
      await this.finish(task);
      task.status = task.kind === "store-image" ? "Completed" : "completed";
      delete task.statusMessage;
      task.progress = "100";
    } catch (e) {
      task.status = task.kind === "store-image" ? "Failed" : "deleted";
      // VM Import reports a bad disk as "ClientError: …"; a store task gives its reason as it is.
      const reason = (e as Error).message;
      task.statusMessage = task.kind === "store-image" ? reason : `ClientError: ${reason}`;
    }
  }

  private async finish(task: FakeTask): Promise<void> {
    if (task.kind === "export-image") return this.finishExport(task);
    if (task.kind === "import-image" || task.kind === "import-snapshot") return this.finishImport(task);
    return this.finishStore(task);
  }

  private async describeTasks(
    p: URLSearchParams,
    kind: FakeTask["kind"],
    idParam: string,
    setName: string,
  ): Promise<string> {
    const ids = list(p, idParam);
    let tasks = [...this.account.tasks.values()].filter((t) => t.kind === kind);
    if (ids.length) {
      for (const id of ids) {
        if (!tasks.some((t) => t.id === id)) {
          throw kind === "export-image"
            ? new Ec2Fault("InvalidExportTaskID.NotFound", `The export task ID '${id}' does not exist`)
            : new Ec2Fault("InvalidConversionTaskId", `The import task ${id} does not exist`);
        }
      }
      tasks = tasks.filter((t) => ids.includes(t.id));
    }
    for (const t of tasks) await this.advance(t);
    const page = this.paginate(p, tasks, setName);
    return `<${setName}>${page.items.map((t) => this.taskXml(t)).join("")}</${setName}>${page.next}`;
  }

  private taskXml(t: FakeTask): string {
    const d = t.details;
    const common = `${tag("progress", t.status === "completed" ? undefined : t.progress)}<status>${t.status}</status>${tag("statusMessage", t.statusMessage)}`;
    if (t.kind === "export-image") {
      return (
        `<item><exportImageTaskId>${t.id}</exportImageTaskId><imageId>${d.imageId}</imageId>${common}` +
        `<s3ExportLocation><s3Bucket>${esc(String(d.bucket))}</s3Bucket>${tag("s3Prefix", d.prefix as string | undefined)}</s3ExportLocation></item>`
      );
    }
    const disk =
      `<format>${d.format}</format><userBucket><s3Bucket>${esc(String(d.bucket))}</s3Bucket>` +
      `<s3Key>${esc(String(d.key))}</s3Key></userBucket>${tag("diskImageSize", d.diskImageSize as number | undefined)}`;
    if (t.kind === "import-snapshot") {
      return (
        `<item><importTaskId>${t.id}</importTaskId>${tag("description", d.description as string | undefined)}` +
        `<snapshotTaskDetail>${common}${disk}${tag("snapshotId", d.snapshotId as string | undefined)}</snapshotTaskDetail></item>`
      );
    }
    return (
      `<item><importTaskId>${t.id}</importTaskId>${common}${tag("imageId", d.imageId as string | undefined)}` +
      `${tag("architecture", d.architecture as string | undefined)}${tag("platform", d.platform as string | undefined)}` +
      `${tag("bootMode", d.bootMode as string | undefined)}${tag("licenseType", d.licenseType as string | undefined)}` +
      `<snapshotDetailSet><item><deviceName>/dev/sda1</deviceName>${disk}` +
      `${tag("snapshotId", d.snapshotId as string | undefined)}<status>${t.status}</status></item></snapshotDetailSet></item>`
    );
  }

  private s3(): S3Connection {
    if (!this.options.s3) throw new Ec2Fault("InternalError", "this test server was started without S3", 500);
    return this.options.s3;
  }

  private exportImage(p: URLSearchParams): string {
    const image = this.image(required(p, "ImageId"));
    const format = required(p, "DiskImageFormat");
    if (!["VMDK", "RAW", "VHD"].includes(format)) {
      throw new Ec2Fault("InvalidParameterValue", `Value (${format}) for parameter DiskImageFormat is invalid.`);
    }
    const bucket = required(p, "S3ExportLocation.S3Bucket");
    const prefix = p.get("S3ExportLocation.S3Prefix") ?? undefined;
    if (image.productCodes.length) {
      throw new Ec2Fault("InvalidParameter", `The image ${image.id} has product codes and cannot be exported`);
    }
    if (image.rootDeviceType !== "ebs" || image.state !== "available") {
      throw new Ec2Fault("IncorrectState", `The image ${image.id} is not an available EBS-backed image`);
    }
    const task = this.newTask("export-image", "export-ami", { imageId: image.id, format, bucket, prefix });
    return (
      `<exportImageTaskId>${task.id}</exportImageTaskId><imageId>${image.id}</imageId>` +
      `<diskImageFormat>${format}</diskImageFormat><roleName>${esc(p.get("RoleName") ?? "vmimport")}</roleName>` +
      `<progress>0</progress><status>${task.status}</status><statusMessage>${task.statusMessage}</statusMessage>` +
      `<s3ExportLocation><s3Bucket>${esc(bucket)}</s3Bucket>${tag("s3Prefix", prefix)}</s3ExportLocation>`
    );
  }

  /** Writes the image's root snapshot into the bucket in the asked format. */
  private async finishExport(task: FakeTask): Promise<void> {
    const d = task.details as { imageId: string; format: string; bucket: string; prefix?: string };
    const image = this.account.images.get(d.imageId);
    const root = image?.blockDevices.find((b) => b.deviceName === image.rootDeviceName);
    const snapshot = root?.snapshotId ? this.account.snapshots.get(root.snapshotId) : undefined;
    if (!snapshot) throw new Error(`the image ${d.imageId} or its root snapshot is gone`);
    await withScratch(async (dir) => {
      const raw = join(dir, "disk.raw");
      await writeSnapshotRaw(snapshot, raw);
      let out = raw;
      if (d.format !== "RAW") {
        out = join(dir, "disk.out");
        const args =
          d.format === "VMDK"
            ? ["-O", "vmdk", "-o", "subformat=streamOptimized"]
            : ["-O", "vpc", "-o", "subformat=dynamic,force_size=on"];
        await qemu(["convert", "-f", "raw", ...args, raw, out]);
      }
      const key = `${d.prefix ?? ""}${task.id}.${d.format.toLowerCase()}`;
      await this.s3().send(
        new PutObjectCommand({
          Bucket: d.bucket,
          Key: key,
          Body: createReadStream(out),
          ContentLength: (await stat(out)).size,
        }),
        { call: "PutObject", subject: `s3://${d.bucket}/${key}` },
      );
    });
  }

  private importTask(p: URLSearchParams, kind: "import-image" | "import-snapshot"): string {
    const base = kind === "import-image" ? "DiskContainer.1" : "DiskContainer";
    const format = required(p, `${base}.Format`).toUpperCase();
    const bucket = required(p, `${base}.UserBucket.S3Bucket`);
    const key = required(p, `${base}.UserBucket.S3Key`);
    if (!["OVA", "VHD", "VHDX", "VMDK", "RAW"].includes(format) || (format === "OVA" && kind === "import-snapshot")) {
      throw new Ec2Fault("InvalidParameterValue", `Value (${format}) for parameter Format is invalid.`);
    }
    const bootMode = p.get("BootMode") ?? undefined;
    if (bootMode === "uefi-preferred") {
      throw new Ec2Fault("InvalidParameterValue", "The uefi-preferred boot mode isn't supported for importing images.");
    }
    const architecture = p.get("Architecture") ?? undefined;
    if (architecture && !["i386", "x86_64"].includes(architecture)) {
      throw new Ec2Fault("InvalidParameterValue", `Value (${architecture}) for parameter Architecture is invalid.`);
    }
    const details = {
      format,
      bucket,
      key,
      ...(p.get("Description") ? { description: p.get("Description") } : {}),
      ...(bootMode ? { bootMode } : {}),
      ...(architecture ? { architecture } : {}),
      ...(p.get("Platform") ? { platform: p.get("Platform") } : {}),
      ...(p.get("LicenseType") ? { licenseType: p.get("LicenseType") } : {}),
    };
    const task = this.newTask(kind, kind === "import-image" ? "import-ami" : "import-snap", details);
    return kind === "import-image"
      ? `<importTaskId>${task.id}</importTaskId><progress>${task.progress}</progress><status>${task.status}</status>` +
          `<statusMessage>${task.statusMessage}</statusMessage>`
      : `<importTaskId>${task.id}</importTaskId><snapshotTaskDetail><progress>${task.progress}</progress>` +
          `<status>${task.status}</status><statusMessage>${task.statusMessage}</statusMessage>` +
          `<format>${format}</format></snapshotTaskDetail>`;
  }

  /** Reads the object, converts it to raw, stores it as a snapshot (and an AMI for ImportImage). */
  private async finishImport(task: FakeTask): Promise<void> {
    const d = task.details as Record<string, string | number | undefined>;
    const failure = this.importFailure;
    this.importFailure = undefined;
    if (failure !== undefined) throw new Error(failure);
    await withScratch(async (dir) => {
      const source = join(dir, "source");
      let out: GetObjectCommandOutput;
      try {
        out = await this.s3().send<GetObjectCommandOutput>(
          new GetObjectCommand({ Bucket: String(d.bucket), Key: String(d.key) }),
          { call: "GetObject" },
        );
      } catch {
        throw new Error("Disk validation failed [We do not have access to the given resource. Reason 403 Forbidden]");
      }
      await pipeline(out.Body as NodeJS.ReadableStream, createWriteStream(source));
      // An OVA's first VMDK is the boot disk (this server imports one disk).
      const disk = d.format === "OVA" ? await firstOvaDisk(source, dir) : source;
      const info = await run("qemu-img", ["info", "--output=json", disk]);
      const probed = info.code === 0 ? (JSON.parse(info.stdout) as { format?: string }) : {};
      const qemuFormat: Record<string, string> = { RAW: "raw", VMDK: "vmdk", OVA: "vmdk", VHD: "vpc", VHDX: "vhdx" };
      const wanted = qemuFormat[String(d.format)];
      if (!wanted || (wanted !== "raw" && probed.format !== wanted)) {
        throw new Error(`Disk validation failed [Unsupported ${d.format} File Format]`);
      }
      const raw = join(dir, "disk.raw");
      await qemu(["convert", "-f", wanted, "-O", "raw", disk, raw]);
      const { size, blocks } = await readRawBlocks(raw);
      if (size === 0) throw new Error("Disk validation failed [Invalid disk size]");
      const snapshot = this.account.addSnapshotOf(Buffer.alloc(0), {
        volumeSizeGiB: Math.max(1, Math.ceil(size / GIB)),
        description: `Created by AWS-VMImport service for ${task.id}`,
      });
      for (const [index, block] of blocks) snapshot.blocks.set(index, block);
      task.details.snapshotId = snapshot.id;
      task.details.diskImageSize = (await stat(source)).size;
      if (task.kind === "import-image") {
        const image = this.addImage({
          name: task.id,
          rootDeviceName: "/dev/sda1",
          blockDevices: [{ deviceName: "/dev/sda1", snapshotId: snapshot.id, volumeSizeGiB: snapshot.volumeSizeGiB }],
          architecture: String(d.architecture ?? "x86_64"),
          state: "available",
          description: `AWS-VMImport service: ${task.id}`,
          ...(d.bootMode ? { bootMode: d.bootMode as FakeImage["bootMode"] } : {}),
        });
        task.details.imageId = image.id;
      }
    });
  }

  private createStoreImageTask(p: URLSearchParams): string {
    const image = this.image(required(p, "ImageId"));
    const bucket = required(p, "Bucket");
    const key = `${image.id}.bin`;
    this.newTask("store-image", "store", { imageId: image.id, bucket, key, started: new Date(this.account.now()) });
    return `<objectKey>${key}</objectKey>`;
  }

  private async describeStoreImageTasks(p: URLSearchParams): Promise<string> {
    const ids = list(p, "ImageId");
    const tasks = [...this.account.tasks.values()].filter(
      (t) => t.kind === "store-image" && (!ids.length || ids.includes(String(t.details.imageId))),
    );
    for (const t of tasks) await this.advance(t);
    const page = this.paginate(p, tasks, "DescribeStoreImageTasks");
    const items = page.items.map(
      (t) =>
        `<item><amiId>${t.details.imageId}</amiId><taskStartTime>${(t.details.started as Date).toISOString()}</taskStartTime>` +
        `<bucket>${esc(String(t.details.bucket))}</bucket><s3objectKey>${esc(String(t.details.key))}</s3objectKey>` +
        `<progressPercentage>${t.progress}</progressPercentage><storeTaskState>${t.status}</storeTaskState>` +
        `${tag("storeTaskFailureReason", t.statusMessage)}</item>`,
    );
    return `<storeImageTaskResultSet>${items.join("")}</storeImageTaskResultSet>${page.next}`;
  }

  /** The archive: this server's own JSON of the image and its snapshots' written blocks. */
  private async finishStore(task: FakeTask): Promise<void> {
    const image = this.account.images.get(String(task.details.imageId));
    if (!image) throw new Error(`The image ${task.details.imageId} is gone`);
    const snapshots = image.blockDevices
      .filter((b) => b.snapshotId)
      .map((b) => {
        const s = this.account.snapshots.get(b.snapshotId!)!;
        return {
          deviceName: b.deviceName,
          volumeSizeGiB: s.volumeSizeGiB,
          blocks: [...s.blocks].map(([i, data]) => [i, data.toString("base64")]),
        };
      });
    const archive = Buffer.from(
      JSON.stringify({
        archive: "chromogenic-test-ami-store",
        image: { ...image, launchPermissions: [], creationDate: image.creationDate.toISOString() },
        snapshots,
      }),
    );
    await this.s3().send(
      new PutObjectCommand({ Bucket: String(task.details.bucket), Key: String(task.details.key), Body: archive }),
      { call: "PutObject" },
    );
  }

  private async createRestoreImageTask(p: URLSearchParams): Promise<string> {
    const bucket = required(p, "Bucket");
    const key = required(p, "ObjectKey");
    let text: string;
    try {
      const out = await this.s3().send<GetObjectCommandOutput>(new GetObjectCommand({ Bucket: bucket, Key: key }), {
        call: "GetObject",
      });
      text = await (out.Body as { transformToString(): Promise<string> }).transformToString();
    } catch {
      throw new Ec2Fault("InvalidParameterValue", `The object s3://${bucket}/${key} cannot be read`);
    }
    let stored: {
      archive?: string;
      image: FakeImage;
      snapshots: { deviceName: string; volumeSizeGiB: number; blocks: [number, string][] }[];
    };
    try {
      stored = JSON.parse(text) as typeof stored;
      if (stored.archive !== "chromogenic-test-ami-store") throw new Error("not an archive");
    } catch {
      throw new Ec2Fault("InvalidParameterValue", `The object s3://${bucket}/${key} is not a stored AMI`);
    }
    const devices = stored.snapshots.map((s) => {
      const snapshot = this.account.addSnapshotOf(Buffer.alloc(0), { volumeSizeGiB: s.volumeSizeGiB });
      for (const [i, data] of s.blocks) snapshot.blocks.set(i, Buffer.from(data, "base64"));
      return { deviceName: s.deviceName, snapshotId: snapshot.id, volumeSizeGiB: s.volumeSizeGiB };
    });
    const image = this.addImage({
      name: p.get("Name") ?? stored.image.name,
      rootDeviceName: stored.image.rootDeviceName,
      blockDevices: devices,
      architecture: stored.image.architecture,
      state: "available",
      ...(stored.image.bootMode ? { bootMode: stored.image.bootMode } : {}),
    });
    return `<imageId>${image.id}</imageId>`;
  }

  // ---- pagination ----

  /** MaxResults / NextToken as the Describe calls take them: the token names the call and where to go on. */
  private paginate<T>(p: URLSearchParams, items: readonly T[], call: string): { items: T[]; next: string } {
    const max = p.get("MaxResults");
    const size = max === null ? this.pageSize : Number(max);
    if (!Number.isInteger(size) || size < 1 || size > 1000) {
      throw new Ec2Fault("InvalidParameterValue", `Value (${max}) for parameter maxResults is invalid.`);
    }
    let start = 0;
    const token = p.get("NextToken");
    if (token) {
      const m = /^([A-Za-z]+):(\d+)$/.exec(Buffer.from(token, "base64").toString());
      if (!m || m[1] !== call) throw new Ec2Fault("InvalidNextToken", "The specified NextToken is not valid.");
      start = Number(m[2]);
    }
    const page = items.slice(start, start + size);
    const end = start + page.length;
    const next = end < items.length ? `<nextToken>${Buffer.from(`${call}:${end}`).toString("base64")}</nextToken>` : "";
    return { items: page, next };
  }
}

/** Starts a server over `account`, closed after the test, and a connection to it. */
export async function startEc2AwsServer(
  t: { after(fn: () => Promise<void> | void): void },
  account: FakeAwsAccount,
  options: Ec2AwsServerOptions = {},
): Promise<{ server: Ec2AwsServer; ec2: Ec2Connection }> {
  const server = new Ec2AwsServer(account, options);
  await server.start();
  t.after(() => server.close());
  const ec2 = server.connection();
  t.after(() => ec2.destroy());
  return { server, ec2 };
}

function notFoundSnapshot(id: string): Ec2Fault {
  return new Ec2Fault("InvalidSnapshot.NotFound", `The snapshot '${id}' does not exist.`);
}

function required(p: URLSearchParams, name: string): string {
  const v = p.get(name);
  if (v === null || v === "") throw new Ec2Fault("MissingParameter", `The request must contain the parameter ${name}`);
  return v;
}

/** The values of NAME.1, NAME.2, … */
function list(p: URLSearchParams, name: string): string[] {
  return indexes(p, name).map((n) => p.get(`${name}.${n}`) ?? "");
}

/** The N of every NAME.N… parameter, in order. */
function indexes(p: URLSearchParams, name: string): number[] {
  const found = new Set<number>();
  const re = new RegExp(`^${name.replace(/\./g, "\\.")}\\.(\\d+)(\\.|$)`);
  for (const key of p.keys()) {
    const m = re.exec(key);
    if (m) found.add(Number(m[1]));
  }
  return [...found].sort((a, b) => a - b);
}

function filterList(p: URLSearchParams): [string, string[]][] {
  return indexes(p, "Filter").map((n) => [p.get(`Filter.${n}.Name`) ?? "", list(p, `Filter.${n}.Value`)]);
}

/** EC2 filter values: * any run, ? one character. */
function wildcard(v: string): RegExp {
  return new RegExp(
    `^${v
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replace(/\*/g, ".*")
      .replace(/\?/g, ".")}$`,
  );
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function tag(name: string, value: string | number | boolean | undefined): string {
  return value === undefined ? "" : `<${name}>${esc(String(value))}</${name}>`;
}

async function qemu(args: string[]): Promise<void> {
  const r = await run("qemu-img", args);
  if (r.code !== 0) throw new Error(`qemu-img ${args[0]} failed: ${r.stderr.trim()}`);
}

/** Extracts the OVA's first .vmdk member into `dir` (plain member names only) and returns its path. */
async function firstOvaDisk(ova: string, dir: string): Promise<string> {
  const listing = await run("tar", ["-tf", ova]);
  const member = listing.code === 0 ? listing.stdout.split("\n").find((n) => /^[\w.-]+\.vmdk$/i.test(n)) : undefined;
  if (!member) throw new Error("Disk validation failed [OVA file contains no disk image]");
  const out = join(dir, "ova");
  await mkdir(out);
  const r = await run("tar", ["-xf", ova, "-C", out, "--", member]);
  if (r.code !== 0) throw new Error(`Disk validation failed [OVA file unreadable: ${r.stderr.trim()}]`);
  return join(out, member);
}

async function withScratch<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(process.env.CHROMOGENIC_TEST_TMP ?? tmpdir(), "ec2-aws-"));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
