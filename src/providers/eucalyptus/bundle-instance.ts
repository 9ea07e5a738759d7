/**
 * Bundling an instance-store instance on the cloud itself: BundleInstance, then DescribeBundleTasks until the
 * task is complete (or failed), CancelBundleTask to give it up. These are EC2 calls the AWS SDK has
 * (BundleInstanceCommand …), sent to the cloud's compute endpoint. The upload policy the cloud's bundler uses
 * to write the bundle into the bucket is made as euca2ools 3.4 makes it (euca2ools/commands/ec2/
 * bundleinstance.py): JSON `{expiration, conditions: [{acl: "ec2-bundle-read"}, {bucket}, ["starts-with",
 * "$key", prefix]]}`, base64-encoded, and signed with HMAC-SHA1 of the bucket owner's secret key over that
 * base64 text. Task states are EC2's: pending, waiting-for-shutdown, bundling, storing, cancelling, complete,
 * failed (euca2ools/commands/ec2/describebundletasks.py filters; the SDK's BundleTaskState).
 */
import { createHmac } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import {
  BundleInstanceCommand,
  CancelBundleTaskCommand,
  DescribeBundleTasksCommand,
  EC2Client,
  type BundleTask,
} from "@aws-sdk/client-ec2";
import { AbortedError, WaitFailedError } from "../../util/errors.js";
import { EucalyptusError } from "./eucalyptus-error.js";
import type { EucalyptusCredentials } from "./query-client.js";

export interface BundleInstanceRequest {
  readonly instanceId: string;
  readonly bucket: string;
  /** The bundle's name: the manifest becomes `<bucket>/<prefix>.manifest.xml`. */
  readonly prefix: string;
  /** The bucket owner's keys; the secret signs the upload policy and is never sent. */
  readonly owner: EucalyptusCredentials;
  /** Hours the upload policy stays valid; 24 as euca2ools. */
  readonly policyHours?: number;
}

/** A bundle task as this library reports it. */
export interface BundleTaskStatus {
  readonly bundleId: string;
  readonly instanceId: string;
  readonly state: string;
  /** "0%" … "100%", as the cloud reports it. */
  readonly progress: string | undefined;
  readonly bucket: string | undefined;
  readonly prefix: string | undefined;
  /** `<bucket>/<prefix>.manifest.xml`, what RegisterImage takes. */
  readonly manifestLocation: string | undefined;
  readonly error: { readonly code: string; readonly message: string } | undefined;
}

/** An SDK EC2 client for a Eucalyptus compute endpoint (e.g. http://clc:8773/services/compute). */
export function eucalyptusEc2Client(
  computeUrl: string,
  credentials: EucalyptusCredentials,
  region = "eucalyptus",
): EC2Client {
  return new EC2Client({ endpoint: computeUrl, region, credentials, maxAttempts: 3 });
}

/** The upload policy and its signature, as euca2ools' generate_default_policy and sign_policy make them. */
export function bundleUploadPolicy(
  bucket: string,
  prefix: string,
  secretAccessKey: string,
  hours = 24,
  now = new Date(),
): { policy: string; policyBase64: string; signature: string } {
  const expiration = new Date(now.getTime() + hours * 3_600_000).toISOString().replace(/\.\d{3}Z$/, "Z");
  const policy = JSON.stringify({
    conditions: [{ acl: "ec2-bundle-read" }, { bucket }, ["starts-with", "$key", prefix]],
    expiration,
  });
  const policyBase64 = Buffer.from(policy).toString("base64");
  const signature = createHmac("sha1", secretAccessKey).update(policyBase64).digest("base64");
  return { policy, policyBase64, signature };
}

function statusOf(task: BundleTask | undefined, what: string): BundleTaskStatus {
  if (!task?.BundleId) throw new Error(`${what}: the reply has no bundle task`);
  const bucket = task.Storage?.S3?.Bucket;
  const prefix = task.Storage?.S3?.Prefix;
  return {
    bundleId: task.BundleId,
    instanceId: task.InstanceId ?? "",
    state: task.State ?? "unknown",
    progress: task.Progress,
    bucket,
    prefix,
    manifestLocation: bucket && prefix ? `${bucket}/${prefix}.manifest.xml` : undefined,
    error: task.BundleTaskError
      ? { code: task.BundleTaskError.Code ?? "unknown", message: task.BundleTaskError.Message ?? "" }
      : undefined,
  };
}

/** The endpoint the client sends to, for messages. */
async function endpointOf(client: EC2Client): Promise<string> {
  try {
    const endpoint = await client.config.endpoint?.();
    if (endpoint)
      return `${endpoint.protocol}//${endpoint.hostname}${endpoint.port ? `:${endpoint.port}` : ""}${endpoint.path}`;
  } catch {
    // fall through: a message without the URL is still a message
  }
  return "the compute endpoint";
}

/** The SDK's failure as a EucalyptusError naming the call, the cloud's code and its message. */
async function cloudFailure(client: EC2Client, action: string, error: unknown, signal?: AbortSignal): Promise<Error> {
  if (signal?.aborted || (error as { name?: string }).name === "AbortError") {
    return new AbortedError(`Eucalyptus compute ${action} cancelled`);
  }
  const e = error as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  // The SDK names a service error after the cloud's code; a failure to connect has no HTTP status.
  const cloudCode = status !== undefined && e.name && e.name !== "Error" ? e.name : undefined;
  return new EucalyptusError(
    { service: "compute", action, url: await endpointOf(client) },
    e.message ?? String(error),
    { ...(status === undefined ? {} : { status }), ...(cloudCode ? { cloudCode } : {}) },
    { cause: error },
  );
}

/** Starts bundling `instanceId` into `bucket/prefix`; returns the new task. */
export async function bundleInstance(
  client: EC2Client,
  request: BundleInstanceRequest,
  signal?: AbortSignal,
): Promise<BundleTaskStatus> {
  const { policy, signature } = bundleUploadPolicy(
    request.bucket,
    request.prefix,
    request.owner.secretAccessKey,
    request.policyHours,
  );
  try {
    const reply = await client.send(
      new BundleInstanceCommand({
        InstanceId: request.instanceId,
        Storage: {
          S3: {
            Bucket: request.bucket,
            Prefix: request.prefix,
            AWSAccessKeyId: request.owner.accessKeyId,
            // The SDK base64-encodes this blob on the wire, giving euca2ools' base64 policy.
            UploadPolicy: Buffer.from(policy),
            UploadPolicySignature: signature,
          },
        },
      }),
      signal ? { abortSignal: signal } : {},
    );
    return statusOf(reply.BundleTask, "BundleInstance");
  } catch (error) {
    throw await cloudFailure(client, "BundleInstance", error, signal);
  }
}

/** The current state of bundle task `bundleId`. */
export async function describeBundleTask(
  client: EC2Client,
  bundleId: string,
  signal?: AbortSignal,
): Promise<BundleTaskStatus> {
  let tasks: BundleTask[];
  try {
    const reply = await client.send(
      new DescribeBundleTasksCommand({ BundleIds: [bundleId] }),
      signal ? { abortSignal: signal } : {},
    );
    tasks = reply.BundleTasks ?? [];
  } catch (error) {
    throw await cloudFailure(client, "DescribeBundleTasks", error, signal);
  }
  const task = tasks.find((t) => t.BundleId === bundleId);
  if (!task) throw new WaitFailedError(`Eucalyptus bundle task ${bundleId} vanished: the cloud no longer lists it`);
  return statusOf(task, "DescribeBundleTasks");
}

/** Asks the cloud to cancel bundle task `bundleId`; returns the task as the cloud then reports it. */
export async function cancelBundleTask(
  client: EC2Client,
  bundleId: string,
  signal?: AbortSignal,
): Promise<BundleTaskStatus> {
  try {
    const reply = await client.send(
      new CancelBundleTaskCommand({ BundleId: bundleId }),
      signal ? { abortSignal: signal } : {},
    );
    return statusOf(reply.BundleTask, "CancelBundleTask");
  } catch (error) {
    throw await cloudFailure(client, "CancelBundleTask", error, signal);
  }
}

export interface BundleWaitOptions {
  /** Give up after this many milliseconds (the task goes on in the cloud); 2 hours by default. */
  readonly timeoutMs?: number;
  /** Between two DescribeBundleTasks; 10 s by default. */
  readonly intervalMs?: number;
  readonly signal?: AbortSignal;
  /** Told each state the task is seen in. */
  readonly onStatus?: (status: BundleTaskStatus) => void;
}

/**
 * Polls bundle task `bundleId` until it is complete; a failed task, a task that vanishes and one still running
 * after `timeoutMs` each end in a WaitFailedError saying which and why.
 */
export async function waitForBundleTask(
  client: EC2Client,
  bundleId: string,
  options: BundleWaitOptions = {},
): Promise<BundleTaskStatus> {
  const timeoutMs = options.timeoutMs ?? 2 * 3_600_000;
  const intervalMs = options.intervalMs ?? 10_000;
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const status = await describeBundleTask(client, bundleId, options.signal);
    options.onStatus?.(status);
    if (status.state === "complete") return status;
    if (status.state === "failed") {
      const why = status.error ? `${status.error.code}: ${status.error.message}` : "the cloud gave no reason";
      throw new WaitFailedError(`Eucalyptus bundle task ${bundleId} of instance ${status.instanceId} failed (${why})`);
    }
    if (performance.now() + intervalMs > deadline) {
      throw new WaitFailedError(
        `Eucalyptus bundle task ${bundleId} of instance ${status.instanceId} is still ${status.state} ` +
          `(${status.progress ?? "no progress reported"}) after ${Math.round(timeoutMs / 1000)} s; it goes on in the cloud`,
      );
    }
    try {
      await sleep(intervalMs, undefined, options.signal ? { signal: options.signal } : {});
    } catch {
      throw new AbortedError(`waiting for Eucalyptus bundle task ${bundleId} cancelled`);
    }
  }
}
