/**
 * A stand-in Eucalyptus 4.4 cloud controller for the Eucalyptus-only calls no real server here can run. It is
 * written from these documents, not from chromogenic's client:
 *  - signatures: AWS Signature Version 4 as AWS documents it (canonical request, string to sign, derived
 *    key), with Eucalyptus 4.4's own rules from clc/modules/msgs/.../auth/login/Hmacv4LoginModule.java (scope
 *    region and service not checked, only the URL query is the canonical query, "/" accepted as the path)
 *    and HmacHandler.java; an unknown key or a wrong signature is refused with AuthFailure;
 *  - DescribeServices: EmpyreanMessages.groovy (DescribeServicesType, ServiceStatusType, ServiceId) and the
 *    4.4 admin tool admin-tools/eucalyptus_admin/commands/bootstrap/describeservices.py (ListAll, filters);
 *    node services are internal, so listed only with ListAll;
 *  - DescribeNodes: NodeControllerConfigurationMessages.groovy / ConfigurationMessages.groovy
 *    (NodeComponentInfoType); only when `describeNodes` is set, as a 3.1 cloud (Configuration.java) — 4.4 has
 *    no handler for it and refuses it like any unknown action;
 *  - verbose DescribeInstances: ComputeService.describeInstances (an administrator's `verbose` lists every
 *    account, an explicit id is looked up in every account, a missing one is InvalidInstanceID.NotFound) and
 *    the `euca:node` tag (VmInstance.VM_NC_HOST_TAG); reply shape as EC2's DescribeInstancesResponse;
 *  - BundleInstance / DescribeBundleTasks / CancelBundleTask: EC2's API reference and euca2ools 3.4's
 *    bundleinstance.py (the upload policy and its HMAC-SHA1 signature, checked here against the owner's key).
 *    With a `bundler` (test/helpers/node-controller-bundler.ts), a task that completes has really stored the
 *    instance's disk as a bundle in its bucket, as the node controller does; a bundler that fails fails the task;
 *  - the image actions (RegisterImage, DescribeImages, DeregisterImage, Modify/DescribeImageAttribute): see
 *    test/helpers/eucalyptus-image-registry.ts, so that the server can be a whole EC2 endpoint;
 *  - non-verbose DescribeInstances as the SDK sends it (InstanceId.N): the caller's own instances (an
 *    administrator's explicit ids in every account), with architecture, kernelId and ramdiskId as EC2's
 *    RunningInstancesItemType has them.
 * An unknown action gets HTTP 400 with the binding failure Eucalyptus raises (Binding.java: "Failed to find
 * corresponding class mapping for element: … in namespace: …"); its error code is AWS's InvalidAction, a guess
 * where the Eucalyptus source does not settle it. Error bodies: EC2's <Response><Errors> for compute,
 * Eucalyptus' <ErrorResponse> (Messages.groovy ErrorResponse/ErrorDetail) for the admin services.
 */
import { createHash, createHmac, timingSafeEqual, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { ImageRegistry, RegistryFault, listParam, type ImageRegistryOptions } from "./eucalyptus-image-registry.js";
import type { NodeBundler } from "./node-controller-bundler.js";

export interface ServerKey {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** The account number the key belongs to. */
  readonly account: string;
  /** An administrator of the cloud (the eucalyptus account). */
  readonly admin: boolean;
}

export interface ModelInstance {
  readonly instanceId: string;
  readonly account: string;
  readonly reservationId: string;
  readonly imageId: string;
  readonly kernelId?: string;
  readonly ramdiskId?: string;
  /** "x86_64", "i386" … as DescribeInstances reports it. */
  readonly architecture?: string;
  /** The instance's root disk as a file: what a `bundler` bundles for BundleInstance. */
  readonly disk?: string;
  readonly rootDeviceType: "instance-store" | "ebs";
  readonly state: "running" | "stopped" | "pending";
  /** The node controller's service name; no `euca:node` tag when absent (a 3.x cloud's instance). */
  readonly nodeTag?: string;
  /** The node that runs it, for DescribeNodes. */
  readonly node: string;
}

export interface ModelNode {
  readonly name: string;
  readonly host: string;
  readonly state: string;
}

export interface AdminServerOptions {
  readonly keys: readonly ServerKey[];
  readonly zone?: string;
  readonly nodes?: readonly ModelNode[];
  readonly instances?: readonly ModelInstance[];
  /** Answer DescribeNodes on /services/Configuration, as a Eucalyptus 3.1 cloud. */
  readonly describeNodes?: boolean;
  /** Instances whose bundle task fails while bundling, with the error the task reports. */
  readonly bundleFailures?: Readonly<Record<string, { code: string; message: string }>>;
  /** Stores the instance's disk as the task's bundle before the task reports complete (the node's work). */
  readonly bundler?: NodeBundler;
  /** Task steps taken per DescribeBundleTasks (1 by default: pending, bundling 20%, 60%, storing, complete). */
  readonly stepsPerDescribe?: number;
  /** How RegisterImage checks a manifest is there. */
  readonly images?: ImageRegistryOptions;
}

export interface BundleTaskRecord {
  bundleId: string;
  instanceId: string;
  account: string;
  bucket: string;
  prefix: string;
  state: string;
  progress: string;
  startTime: string;
  updateTime: string;
  step: number;
  error?: { code: string; message: string };
  /** The node's bundling, started when the task starts bundling. */
  stored?: Promise<void>;
}

export interface AdminServer {
  /** The cloud controller's base URL, e.g. http://127.0.0.1:PORT */
  readonly url: string;
  /** Every request's service path, action and whether its signature was accepted. */
  readonly log: { path: string; action: string; accepted: boolean; signingService?: string }[];
  readonly bundleTasks: Map<string, BundleTaskRecord>;
  readonly images: ImageRegistry;
  close(): Promise<void>;
}

const EC2_NS = "http://ec2.amazonaws.com/doc/2014-10-01/";
const EUCA_NS = "http://msgs.eucalyptus.com/4.4.5";
/** The order a bundle task goes through, one step per DescribeBundleTasks. */
const BUNDLE_STEPS: readonly [string, string][] = [
  ["pending", "0%"],
  ["bundling", "20%"],
  ["bundling", "60%"],
  ["storing", "80%"],
  ["complete", "100%"],
];

export const DEFAULT_NODES: readonly ModelNode[] = [
  { name: "10.111.5.21", host: "10.111.5.21", state: "ENABLED" },
  { name: "10.111.5.22", host: "10.111.5.22", state: "ENABLED" },
];

class QueryFault extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const esc = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const el = (name: string, value: string | undefined): string =>
  value === undefined ? "" : `<${name}>${esc(value)}</${name}>`;

/** AWS's URI encoding for SigV4 (unreserved characters kept, everything else %XX upper case). */
const uriEncode = (s: string): string =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

const hmac = (key: Buffer | string, data: string): Buffer => createHmac("sha256", key).update(data, "utf8").digest();

/** Checks a SigV4 Authorization header; returns the key used, or throws a QueryFault as the cloud would. */
function verifySignature(
  req: IncomingMessage,
  body: string,
  keys: readonly ServerKey[],
  log: { signingService?: string },
): ServerKey {
  const auth = req.headers["authorization"];
  const m =
    typeof auth === "string" &&
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(
      auth,
    );
  if (!m) throw new QueryFault(403, "AuthFailure", "missing or malformed AWS4-HMAC-SHA256 Authorization header");
  const [, keyId, day, region, service, signedHeaders, signature] = m as unknown as string[];
  log.signingService = service!;
  const key = keys.find((k) => k.accessKeyId === keyId);
  if (!key) throw new QueryFault(403, "AuthFailure", "AWS was not able to validate the provided access credentials");
  const amzDate = req.headers["x-amz-date"];
  if (typeof amzDate !== "string" || !/^\d{8}T\d{6}Z$/.test(amzDate) || amzDate.slice(0, 8) !== day) {
    throw new QueryFault(403, "AuthFailure", "X-Amz-Date missing or not the credential scope's day");
  }
  const when = Date.UTC(
    +amzDate.slice(0, 4),
    +amzDate.slice(4, 6) - 1,
    +amzDate.slice(6, 8),
    +amzDate.slice(9, 11),
    +amzDate.slice(11, 13),
    +amzDate.slice(13, 15),
  );
  if (Math.abs(Date.now() - when) > 15 * 60_000) throw new QueryFault(403, "RequestExpired", "request has expired");
  const url = new URL(req.url ?? "/", "http://x");
  const query = [...url.searchParams.entries()]
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
  const names = signedHeaders!.split(";");
  if (!names.includes("host")) throw new QueryFault(403, "AuthFailure", "the host header is not signed");
  const headerLines = names.map((name) => {
    const value = req.headers[name];
    const text = Array.isArray(value) ? value.join(",") : (value ?? "");
    return `${name}:${text.trim().replace(/\s+/g, " ")}\n`;
  });
  const payloadHash = createHash("sha256").update(body, "utf8").digest("hex");
  const scope = `${day}/${region}/${service}/aws4_request`;
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${key.secretAccessKey}`, day!), region!), service!), "aws4_request");
  const expected = (path: string): Buffer => {
    const canonical = ["POST", path, query, headerLines.join(""), signedHeaders, payloadHash].join("\n");
    const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, createHash("sha256").update(canonical).digest("hex")].join(
      "\n",
    );
    return hmac(signingKey, toSign);
  };
  const given = Buffer.from(signature!, "hex");
  const path = url.pathname
    .split("/")
    .map((seg) => uriEncode(decodeURIComponent(seg)))
    .join("/");
  if (!timingSafeEqual(expected(path), given) && !timingSafeEqual(expected("/"), given)) {
    throw new QueryFault(
      403,
      "AuthFailure",
      "The request signature we calculated does not match the signature you provided (SignatureDoesNotMatch)",
    );
  }
  return key;
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new QueryFault(413, "RequestEntityTooLarge", "request body too large"));
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

export async function startEucalyptusAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const zone = options.zone ?? "one";
  const nodes = options.nodes ?? DEFAULT_NODES;
  const instances = options.instances ?? [];
  const log: AdminServer["log"] = [];
  const bundleTasks = new Map<string, BundleTaskRecord>();
  const images = new ImageRegistry(options.images ?? {}, EC2_NS);
  const now = (): string => new Date().toISOString();

  const services = [
    {
      name: "10.111.5.1",
      type: "eucalyptus",
      partition: "eucalyptus",
      host: "10.111.5.1",
      state: "ENABLED",
      internal: false,
    },
    {
      name: "10.111.5.1",
      type: "compute",
      partition: "compute",
      host: "10.111.5.1",
      state: "ENABLED",
      internal: false,
    },
    { name: `${zone}-cc`, type: "cluster", partition: zone, host: "10.111.5.2", state: "ENABLED", internal: true },
    ...nodes.map((n) => ({
      name: n.name,
      type: "node",
      partition: zone,
      host: n.host,
      state: n.state,
      internal: true,
    })),
  ];

  function describeServices(params: URLSearchParams, key: ServerKey): string {
    if (!key.admin) throw new QueryFault(403, "AccessDenied", "DescribeServices is for cloud administrators");
    const listAll = params.get("ListAll") === "true";
    const names = listParam(params, "ServiceName");
    const filters = new Map<string, string[]>();
    for (let i = 1; params.has(`Filter.${i}.Name`); i++) {
      filters.set(params.get(`Filter.${i}.Name`)!, listParam(params, `Filter.${i}.Value`));
    }
    const fieldOf: Record<string, (s: (typeof services)[number]) => string> = {
      "service-type": (s) => s.type,
      host: (s) => s.host,
      partition: (s) => s.partition,
      state: (s) => s.state.toLowerCase(),
    };
    for (const name of filters.keys()) {
      if (!fieldOf[name]) throw new QueryFault(400, "InvalidParameterValue", `unknown filter: ${name}`);
    }
    const chosen = services.filter(
      (s) =>
        (listAll || !s.internal) &&
        (names.length === 0 || names.includes(s.name)) &&
        [...filters].every(([name, values]) => values.includes(fieldOf[name]!(s))),
    );
    const items = chosen
      .map((s) => {
        const uri = `http://${s.host}:${s.type === "node" ? 8775 : 8773}/services/${s.type}`;
        const id =
          el("uuid", randomBytes(8).toString("hex")) +
          el("partition", s.partition) +
          el("name", s.name) +
          el("type", s.type) +
          el("fullName", `arn:euca:eucalyptus:${s.partition}:${s.type}:${s.name}/`) +
          `<uris><item>${esc(uri)}</item></uris>` +
          el("uri", uri) +
          el("host", s.host);
        return `<item><serviceId>${id}</serviceId>${el("localState", s.state)}${el("localEpoch", "7")}<details/></item>`;
      })
      .join("");
    return `<DescribeServicesResponseType xmlns="${EUCA_NS}"><_return>true</_return><serviceStatuses>${items}</serviceStatuses></DescribeServicesResponseType>`;
  }

  function describeNodes(key: ServerKey): string {
    if (!key.admin) throw new QueryFault(403, "AccessDenied", "DescribeNodes is for cloud administrators");
    const items = nodes
      .map((n) => {
        const ids = instances.filter((i) => i.node === n.name).map((i) => `<item>${esc(i.instanceId)}</item>`);
        return `<item>${el("name", n.name)}${el("clusterName", `${zone}-cc`)}<instances>${ids.join("")}</instances></item>`;
      })
      .join("");
    return `<DescribeNodesResponseType xmlns="${EUCA_NS}"><_return>true</_return><registered>${items}</registered></DescribeNodesResponseType>`;
  }

  function visibleInstances(params: URLSearchParams, key: ServerKey): ModelInstance[] {
    const ids = listParam(params, "InstanceId");
    const verbose = ids.includes("verbose");
    const wanted = ids.filter((id) => id !== "verbose");
    const showAll = verbose || wanted.length > 0;
    const owned = instances.filter((i) => (key.admin && showAll) || i.account === key.account);
    const found = wanted.length ? owned.filter((i) => wanted.includes(i.instanceId)) : owned;
    const missing = wanted.filter((id) => !found.some((i) => i.instanceId === id));
    if (missing.length) {
      throw new QueryFault(400, "InvalidInstanceID.NotFound", `The instance ID '${missing.join(", ")}' does not exist`);
    }
    return found;
  }

  function describeInstances(params: URLSearchParams, key: ServerKey): string {
    const found = visibleInstances(params, key);
    const reservations = new Map<string, ModelInstance[]>();
    for (const i of found) reservations.set(i.reservationId, [...(reservations.get(i.reservationId) ?? []), i]);
    const items = [...reservations]
      .map(([rid, list]) => {
        const insts = list
          .map((i) => {
            const tags = i.nodeTag
              ? `<tagSet><item><key>euca:node</key><value>${esc(i.nodeTag)}</value></item></tagSet>`
              : "<tagSet/>";
            const code = i.state === "running" ? "16" : i.state === "pending" ? "0" : "80";
            return (
              `<item>${el("instanceId", i.instanceId)}${el("imageId", i.imageId)}` +
              `<instanceState><code>${code}</code><name>${i.state}</name></instanceState>` +
              `${el("kernelId", i.kernelId)}${el("ramdiskId", i.ramdiskId)}${el("architecture", i.architecture)}` +
              `<placement><availabilityZone>${esc(zone)}</availabilityZone></placement>` +
              `${el("rootDeviceType", i.rootDeviceType)}${el("rootDeviceName", "/dev/sda")}${tags}</item>`
            );
          })
          .join("");
        return `<item>${el("reservationId", rid)}${el("ownerId", list[0]!.account)}<groupSet/><instancesSet>${insts}</instancesSet></item>`;
      })
      .join("");
    return `<DescribeInstancesResponse xmlns="${EC2_NS}"><requestId>${randomBytes(8).toString("hex")}</requestId><reservationSet>${items}</reservationSet></DescribeInstancesResponse>`;
  }

  function taskXml(t: BundleTaskRecord): string {
    const error = t.error ? `<error>${el("code", t.error.code)}${el("message", t.error.message)}</error>` : "";
    return (
      `${el("instanceId", t.instanceId)}${el("bundleId", t.bundleId)}${el("state", t.state)}` +
      `${el("startTime", t.startTime)}${el("updateTime", t.updateTime)}` +
      `<storage><S3>${el("bucket", t.bucket)}${el("prefix", t.prefix)}</S3></storage>${el("progress", t.progress)}${error}`
    );
  }

  function bundleInstance(params: URLSearchParams, key: ServerKey): string {
    const instanceId = params.get("InstanceId") ?? "";
    const instance = instances.find((i) => i.instanceId === instanceId && (key.admin || i.account === key.account));
    if (!instance)
      throw new QueryFault(400, "InvalidInstanceID.NotFound", `The instance ID '${instanceId}' does not exist`);
    if (instance.rootDeviceType !== "instance-store") {
      throw new QueryFault(400, "InvalidParameterValue", `instance ${instanceId} is EBS-backed; use CreateImage`);
    }
    if (instance.state !== "running") {
      throw new QueryFault(400, "IncorrectState", `instance ${instanceId} is ${instance.state}, not running`);
    }
    const bucket = params.get("Storage.S3.Bucket");
    const prefix = params.get("Storage.S3.Prefix");
    const ownerKeyId = params.get("Storage.S3.AWSAccessKeyId");
    const policyB64 = params.get("Storage.S3.UploadPolicy");
    const policySig = params.get("Storage.S3.UploadPolicySignature");
    if (!bucket || !prefix || !ownerKeyId || !policyB64 || !policySig) {
      throw new QueryFault(
        400,
        "MissingParameter",
        "Storage.S3.{Bucket,Prefix,AWSAccessKeyId,UploadPolicy,UploadPolicySignature} are required",
      );
    }
    const owner = options.keys.find((k) => k.accessKeyId === ownerKeyId);
    const expectedSig = owner && createHmac("sha1", owner.secretAccessKey).update(policyB64).digest("base64");
    if (!owner || expectedSig !== policySig) {
      throw new QueryFault(
        400,
        "InvalidParameterValue",
        "the upload policy's signature does not match the owner's key",
      );
    }
    let policy: { expiration?: string; conditions?: unknown[] };
    try {
      policy = JSON.parse(Buffer.from(policyB64, "base64").toString("utf8")) as typeof policy;
    } catch {
      throw new QueryFault(400, "InvalidParameterValue", "the upload policy is not base64 JSON");
    }
    const conds = JSON.stringify(policy.conditions ?? []);
    if (
      !conds.includes(JSON.stringify({ bucket })) ||
      !conds.includes(JSON.stringify(["starts-with", "$key", prefix])) ||
      !(Date.parse(policy.expiration ?? "") > Date.now())
    ) {
      throw new QueryFault(
        400,
        "InvalidParameterValue",
        "the upload policy does not allow this bucket and prefix, or has expired",
      );
    }
    const bundleId = `bun-${randomBytes(4).toString("hex")}`;
    const t: BundleTaskRecord = {
      bundleId,
      instanceId,
      account: instance.account,
      bucket,
      prefix,
      state: "pending",
      progress: "0%",
      startTime: now(),
      updateTime: now(),
      step: 0,
    };
    bundleTasks.set(bundleId, t);
    return `<BundleInstanceResponse xmlns="${EC2_NS}"><requestId>${randomBytes(8).toString("hex")}</requestId><bundleInstanceTask>${taskXml(t)}</bundleInstanceTask></BundleInstanceResponse>`;
  }

  /** Starts the node's bundling of the task's instance (once), keeping its failure for the task. */
  function startStoring(t: BundleTaskRecord): Promise<void> {
    const instance = instances.find((i) => i.instanceId === t.instanceId)!;
    if (!options.bundler) return Promise.resolve();
    if (!instance.disk) return Promise.reject(new Error(`instance ${t.instanceId} has no disk for the node to bundle`));
    return options.bundler({
      disk: instance.disk,
      bucket: t.bucket,
      prefix: t.prefix,
      ...(instance.kernelId ? { kernelId: instance.kernelId } : {}),
      ...(instance.ramdiskId ? { ramdiskId: instance.ramdiskId } : {}),
    });
  }

  /** One step of a task's life; the step to complete waits for the node's bundle to be stored. */
  async function advance(t: BundleTaskRecord): Promise<void> {
    if (t.state === "complete" || t.state === "failed") return;
    if (t.state === "cancelling") {
      t.state = "failed";
      t.error = { code: "Client.Cancelled", message: "bundle task cancelled by its owner" };
    } else {
      t.step++;
      const failure = options.bundleFailures?.[t.instanceId];
      if (failure && t.step >= 2) {
        t.state = "failed";
        t.error = failure;
      } else {
        if (t.step >= 1 && !t.stored) {
          t.stored = startStoring(t);
          t.stored.catch(() => undefined);
        }
        const [state, progress] = BUNDLE_STEPS[Math.min(t.step, BUNDLE_STEPS.length - 1)]!;
        if (state === "complete") {
          try {
            await t.stored;
          } catch (e) {
            t.state = "failed";
            t.error = { code: "Server.BundlingFailed", message: `the node could not store the bundle: ${String(e)}` };
            t.updateTime = now();
            return;
          }
        }
        t.state = state;
        t.progress = progress;
      }
    }
    t.updateTime = now();
  }

  async function describeBundleTasks(params: URLSearchParams, key: ServerKey): Promise<string> {
    const ids = listParam(params, "BundleId");
    const mine = [...bundleTasks.values()].filter((t) => key.admin || t.account === key.account);
    const chosen = ids.length ? mine.filter((t) => ids.includes(t.bundleId)) : mine;
    for (const t of chosen) {
      for (let n = 0; n < (options.stepsPerDescribe ?? 1); n++) await advance(t);
    }
    const items = chosen.map((t) => `<item>${taskXml(t)}</item>`).join("");
    return `<DescribeBundleTasksResponse xmlns="${EC2_NS}"><requestId>${randomBytes(8).toString("hex")}</requestId><bundleInstanceTasksSet>${items}</bundleInstanceTasksSet></DescribeBundleTasksResponse>`;
  }

  function cancelBundleTask(params: URLSearchParams, key: ServerKey): string {
    const t = bundleTasks.get(params.get("BundleId") ?? "");
    if (!t || !(key.admin || t.account === key.account)) {
      throw new QueryFault(
        400,
        "InvalidBundleID.NotFound",
        `The bundle task '${params.get("BundleId")}' does not exist`,
      );
    }
    if (t.state === "complete" || t.state === "failed") {
      throw new QueryFault(400, "IncorrectState", `bundle task ${t.bundleId} is already ${t.state}`);
    }
    t.state = "cancelling";
    t.updateTime = now();
    return `<CancelBundleTaskResponse xmlns="${EC2_NS}"><requestId>${randomBytes(8).toString("hex")}</requestId><bundleInstanceTask>${taskXml(t)}</bundleInstanceTask></CancelBundleTaskResponse>`;
  }

  const routes: Record<string, Record<string, (p: URLSearchParams, k: ServerKey) => string | Promise<string>>> = {
    "/services/Empyrean": { DescribeServices: describeServices },
    "/services/Configuration": options.describeNodes ? { DescribeNodes: (_p, k) => describeNodes(k) } : {},
    "/services/compute": {
      DescribeInstances: describeInstances,
      BundleInstance: bundleInstance,
      DescribeBundleTasks: describeBundleTasks,
      CancelBundleTask: cancelBundleTask,
      RegisterImage: (p, k) => images.register(p, k),
      DescribeImages: (p, k) => images.describe(p, k),
      DeregisterImage: (p, k) => images.deregister(p, k),
      ModifyImageAttribute: (p, k) => images.modifyAttribute(p, k),
      DescribeImageAttribute: (p, k) => images.describeAttribute(p, k),
    },
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? "/", "http://x").pathname.replace(/\/+$/, "");
    const compute = path === "/services/compute";
    const entry: AdminServer["log"][number] = { path, action: "", accepted: false };
    log.push(entry);
    const send = (status: number, xml: string): void => {
      res.writeHead(status, { "content-type": "text/xml; charset=utf-8" });
      res.end(`<?xml version="1.0" encoding="UTF-8"?>\n${xml}`);
    };
    try {
      if (req.method !== "POST") throw new QueryFault(405, "InvalidAction", "only POST is served here");
      const body = await readBody(req, 1024 * 1024);
      const params = new URLSearchParams(body);
      entry.action = params.get("Action") ?? "";
      const key = verifySignature(req, body, options.keys, entry);
      entry.accepted = true;
      const service = routes[path];
      if (!service) throw new QueryFault(404, "InvalidAction", `no service at ${path}`);
      const handler = service[entry.action];
      if (!handler) {
        const ns = compute ? EC2_NS : EUCA_NS;
        throw new QueryFault(
          400,
          "InvalidAction",
          `Failed to find corresponding class mapping for element: ${entry.action} in namespace: ${ns}`,
        );
      }
      send(200, await handler(params, key));
    } catch (error) {
      const fault =
        error instanceof QueryFault
          ? error
          : error instanceof RegistryFault
            ? new QueryFault(400, error.code, error.message)
            : new QueryFault(500, "InternalError", String(error));
      const requestId = randomBytes(8).toString("hex");
      send(
        fault.status,
        compute
          ? `<Response><Errors><Error>${el("Code", fault.code)}${el("Message", fault.message)}</Error></Errors>${el("RequestID", requestId)}</Response>`
          : `<ErrorResponse xmlns="${EUCA_NS}"><Error><Type>Sender</Type>${el("Code", fault.code)}${el("Message", fault.message)}</Error>${el("RequestId", requestId)}</ErrorResponse>`,
      );
    }
  }

  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    log,
    bundleTasks,
    images,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
