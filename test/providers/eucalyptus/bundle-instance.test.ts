/**
 * BundleInstance / DescribeBundleTasks / CancelBundleTask through the AWS SDK's EC2 client against the
 * documented stand-in server (test/helpers/eucalyptus-admin-server.ts), which checks the request signature
 * and the upload policy's HMAC-SHA1 signature against the bucket owner's key, and moves each task one state
 * on per DescribeBundleTasks: pending → bundling → storing → complete, or → failed.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  bundleInstance,
  bundleUploadPolicy,
  cancelBundleTask,
  eucalyptusEc2Client,
  waitForBundleTask,
  type BundleTaskStatus,
} from "../../../src/providers/eucalyptus/bundle-instance.js";
import { EucalyptusError } from "../../../src/providers/eucalyptus/eucalyptus-error.js";
import { ChromogenicError } from "../../../src/util/errors.js";
import { startEucalyptusAdminServer, type AdminServer, type ServerKey } from "../../helpers/eucalyptus-admin-server.js";

const ALICE: ServerKey = {
  accessKeyId: "AKIALICE00000000",
  secretAccessKey: "alice-secret-123",
  account: "123456789012",
  admin: false,
};
const node = "10.111.5.21";
const base = { account: ALICE.account, reservationId: "r-1", imageId: "emi-11111111", nodeTag: node, node } as const;

let server: AdminServer;
before(async () => {
  server = await startEucalyptusAdminServer({
    keys: [ALICE],
    instances: [
      { ...base, instanceId: "i-00000001", rootDeviceType: "instance-store", state: "running" },
      { ...base, instanceId: "i-00000002", rootDeviceType: "instance-store", state: "running" },
      { ...base, instanceId: "i-00000003", rootDeviceType: "ebs", state: "running" },
    ],
    bundleFailures: { "i-00000002": { code: "Client.BundlingFailed", message: "not enough space on the node" } },
  });
});
after(() => server.close());

const client = () => eucalyptusEc2Client(`${server.url}/services/compute`, ALICE);

test("the upload policy is euca2ools' and its signature is HMAC-SHA1 over the base64 text", () => {
  const { policy, policyBase64, signature } = bundleUploadPolicy(
    "bkt",
    "img",
    "secret",
    24,
    new Date("2026-01-02T03:04:05.678Z"),
  );
  assert.deepEqual(JSON.parse(policy), {
    conditions: [{ acl: "ec2-bundle-read" }, { bucket: "bkt" }, ["starts-with", "$key", "img"]],
    expiration: "2026-01-03T03:04:05Z",
  });
  assert.equal(Buffer.from(policyBase64, "base64").toString(), policy);
  // The same HMAC computed by openssl, independently of node:crypto.
  const openssl = execFileSync("openssl", ["dgst", "-sha1", "-hmac", "secret", "-binary"], { input: policyBase64 });
  assert.equal(signature, openssl.toString("base64"));
});

test("a bundle task is waited for through its states to complete", async () => {
  const ec2 = client();
  const task = await bundleInstance(ec2, { instanceId: "i-00000001", bucket: "images", prefix: "web-1", owner: ALICE });
  assert.equal(task.state, "pending");
  assert.match(task.bundleId, /^bun-[0-9a-f]{8}$/);
  const seen: BundleTaskStatus[] = [];
  const done = await waitForBundleTask(ec2, task.bundleId, { intervalMs: 10, onStatus: (s) => seen.push(s) });
  assert.deepEqual(
    seen.map((s) => `${s.state} ${s.progress}`),
    ["bundling 20%", "bundling 60%", "storing 80%", "complete 100%"],
  );
  assert.equal(done.manifestLocation, "images/web-1.manifest.xml");
  assert.equal(done.instanceId, "i-00000001");
  assert.equal(server.log.at(-1)!.signingService, "ec2");
  assert.ok(server.log.every((r) => r.accepted));
});

test("a task that fails ends the wait with the cloud's reason", async () => {
  const ec2 = client();
  const task = await bundleInstance(ec2, { instanceId: "i-00000002", bucket: "images", prefix: "web-2", owner: ALICE });
  await assert.rejects(waitForBundleTask(ec2, task.bundleId, { intervalMs: 10 }), (error: unknown) => {
    assert.ok(error instanceof ChromogenicError);
    assert.equal(error.code, "EWAIT");
    assert.equal(
      error.message,
      `Eucalyptus bundle task ${task.bundleId} of instance i-00000002 failed (Client.BundlingFailed: not enough space on the node)`,
    );
    return true;
  });
});

test("a wait past its limit says the task is still going, and a cancelled task ends as failed", async () => {
  const ec2 = client();
  const task = await bundleInstance(ec2, { instanceId: "i-00000001", bucket: "images", prefix: "web-3", owner: ALICE });
  await assert.rejects(
    waitForBundleTask(ec2, task.bundleId, { intervalMs: 50, timeoutMs: 60 }),
    /bundle task bun-[0-9a-f]+ of instance i-00000001 is still bundling \((20|60)%\) after 0 s; it goes on in the cloud/,
  );
  const cancelling = await cancelBundleTask(ec2, task.bundleId);
  assert.equal(cancelling.state, "cancelling");
  await assert.rejects(waitForBundleTask(ec2, task.bundleId, { intervalMs: 10 }), /failed \(Client\.Cancelled: /);
});

test("an EBS instance, a wrong owner secret and a wrong request key are refused with the cloud's codes", async () => {
  await assert.rejects(
    bundleInstance(client(), { instanceId: "i-00000003", bucket: "b", prefix: "p", owner: ALICE }),
    (error: unknown) => {
      assert.ok(error instanceof EucalyptusError);
      assert.equal(error.cloudCode, "InvalidParameterValue");
      assert.match(
        error.message,
        /^Eucalyptus compute BundleInstance at http:\/\/127\.0\.0\.1:\d+\/services\/compute → HTTP 400 InvalidParameterValue: instance i-00000003 is EBS-backed/,
      );
      return true;
    },
  );
  await assert.rejects(
    bundleInstance(client(), {
      instanceId: "i-00000001",
      bucket: "b",
      prefix: "p",
      owner: { ...ALICE, secretAccessKey: "wrong" },
    }),
    /InvalidParameterValue: the upload policy's signature does not match/,
  );
  const stranger = eucalyptusEc2Client(`${server.url}/services/compute`, { ...ALICE, secretAccessKey: "wrong" });
  await assert.rejects(
    bundleInstance(stranger, { instanceId: "i-00000001", bucket: "b", prefix: "p", owner: ALICE }),
    (error: unknown) => {
      assert.ok(error instanceof EucalyptusError);
      assert.equal(error.code, "EAUTH");
      assert.equal(error.cloudCode, "AuthFailure");
      assert.doesNotMatch(error.message, /alice-secret|wrong/);
      return true;
    },
  );
});

test("an abort ends the wait at once as EABORTED", async () => {
  const ec2 = client();
  const task = await bundleInstance(ec2, { instanceId: "i-00000001", bucket: "images", prefix: "web-4", owner: ALICE });
  const controller = new AbortController();
  const waiting = waitForBundleTask(ec2, task.bundleId, { intervalMs: 60_000, signal: controller.signal });
  setTimeout(() => controller.abort(), 100);
  const started = performance.now();
  await assert.rejects(waiting, (error: unknown) => (error as { code?: string }).code === "EABORTED");
  assert.ok(performance.now() - started < 5000);
});
