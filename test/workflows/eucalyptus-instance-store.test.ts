/**
 * `image create --cloud env-euca INSTANCE NAME` of an instance-store instance, through the CLI, both ways:
 *  - node copy (--node-ssh-key): the root disk copied off a real OpenSSH server on loopback holding a
 *    node-controller-shaped tree, bundled with the user's keys into the real Swift (s3api, tempauth), registered;
 *  - BundleInstance (no node key): the stand-in cloud's node bundles the disk into Swift (signed by the node,
 *    key wrapped for the cloud, as Eucalyptus 4.4 does), and the cloud registers it under NAME.
 * The EC2 endpoint is the documented stand-in server (test/helpers/eucalyptus-admin-server.ts), given Swift's
 * tempauth key so that one eucarc key pair works for both, as on a real cloud.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { chmod, copyFile, mkdir, open, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ProviderImage } from "../../src/providers/provider.js";
import { Ec2Connection } from "../../src/providers/ec2/ec2-connection.js";
import { getLaunchPermissions } from "../../src/providers/ec2/ec2-launch-permissions.js";
import { listObjects } from "../../src/providers/ec2/s3-listing.js";
import {
  startEucalyptusAdminServer,
  type AdminServer,
  type ModelInstance,
} from "../helpers/eucalyptus-admin-server.js";
import type { RegisteredImage } from "../helpers/eucalyptus-image-registry.js";
import { nodeControllerBundler } from "../helpers/node-controller-bundler.js";
import { startOpenSshServer, type OpenSshServer } from "../helpers/openssh-server.js";
import { requireSwift, swiftConnection, SWIFT_USERS, testBucket } from "../helpers/swift-s3.js";
import { manifestsInSwift, swiftEucarc } from "../helpers/eucalyptus-swift-cloud.js";
import { makeBundleKeys, type BundleKeys } from "../helpers/euca2ools.js";
import { doneOf, errorOf } from "../helpers/event-lines.js";
import { pattern, qemuCompare, runCli, scratch } from "../helpers/tools.js";

const MiB = 2 ** 20;
const ACCOUNT = "123456789012";
const KERNEL = "eki-1a2b3c4d";
const RAMDISK = "eri-5e6f7a8b";
/** An account the new images are shared with (--share). */
const MEMBER = "210987654321";
const SHARED = ["--public", "--share", MEMBER];
const NODE_COPIED = "i-0000c0de";
const BUNDLED = "i-0000b0b0";
const FAILING = "i-0000dead";

let sshd: OpenSshServer;
let server: AdminServer;
let keys: BundleKeys;
let dir: string;
let instancesDir: string;
const disks = new Map<string, string>();
const s3 = swiftConnection("tester");

/** A sparse 64 MiB disk with patterned data at a few places, the last bytes included. */
async function sparseDisk(path: string, seed: number): Promise<void> {
  const file = await open(path, "w");
  await file.truncate(64 * MiB);
  for (const [i, at] of [0, 3 * MiB + 517, 30 * MiB, 64 * MiB - MiB].entries()) {
    await file.write(pattern(MiB, seed + i), 0, MiB, at);
  }
  await file.close();
}

async function sha1(path: string): Promise<string> {
  const hash = createHash("sha1");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

before(async () => {
  await requireSwift();
  sshd = await startOpenSshServer();
  dir = join(sshd.dir, "test");
  await mkdir(dir);
  keys = await makeBundleKeys(dir);
  instancesDir = join(sshd.dir, "node", "instances", "work");
  for (const [id, seed] of [
    [NODE_COPIED, 3],
    [BUNDLED, 5],
  ] as const) {
    const instanceDir = join(instancesDir, ACCOUNT, id);
    await mkdir(instanceDir, { recursive: true });
    await sparseDisk(join(instanceDir, "disk"), seed);
    disks.set(id, join(instanceDir, "disk"));
  }
  const instance = (instanceId: string): ModelInstance => ({
    instanceId,
    account: ACCOUNT,
    reservationId: `r-${instanceId.slice(2)}`,
    imageId: "emi-0badf00d",
    kernelId: KERNEL,
    ramdiskId: RAMDISK,
    architecture: "x86_64",
    rootDeviceType: "instance-store",
    state: "running",
    nodeTag: "127.0.0.1",
    node: "127.0.0.1",
    ...(disks.has(instanceId) ? { disk: disks.get(instanceId)! } : {}),
  });
  server = await startEucalyptusAdminServer({
    // The cloud's key is Swift's tempauth user, so the one eucarc key pair signs EC2 and S3 alike.
    keys: [{ ...SWIFT_USERS.tester, account: ACCOUNT, admin: true }],
    nodes: [{ name: "127.0.0.1", host: "127.0.0.1", state: "ENABLED" }],
    instances: [instance(NODE_COPIED), instance(BUNDLED), instance(FAILING)],
    bundleFailures: { [FAILING]: { code: "Client.BundlingFailed", message: "no space left on the node" } },
    // The third key pair stands for the node's own (node-pk.pem): it signs what the node bundles.
    bundler: nodeControllerBundler(s3, { nodeKeyPath: keys.otherKey, cloudCertPath: keys.cloudCert }),
    // Two steps per poll: the CLI's 10 s poll sees the task complete on its second look.
    stepsPerDescribe: 2,
    images: manifestsInSwift(s3),
  });
});

after(async () => {
  await server?.close();
  await sshd?.stop();
  s3.destroy();
});

/** The eucarc of the user, with a fresh bucket, job state and temporary folder. */
async function eucarc(t: { after(fn: () => Promise<void> | void): void }) {
  const work = await scratch(t);
  const tmp = join(work, "tmp");
  await mkdir(tmp);
  const bucket = testBucket(t, s3);
  // Each test starts with no image registered (its bucket goes with testBucket).
  t.after(() => server.images.images.clear());
  const env: NodeJS.ProcessEnv = {
    ...swiftEucarc({ serverUrl: server.url, account: ACCOUNT, keys, bucket, state: join(work, "state") }),
    TMPDIR: tmp,
  };
  const logged = server.log.length;
  /** The EC2 actions the CLI sent in this test, each once per call. */
  const actions = () => server.log.slice(logged).map((l) => l.action);
  return { work, tmp, bucket, env, actions };
}

const count = (list: readonly string[], item: string) => list.filter((x) => x === item).length;

/** The user's images as `image list` shows them (DescribeImages, owner self): name, kernel and ramdisk. */
async function listed(
  env: NodeJS.ProcessEnv,
): Promise<{ id: string; name: string; kernel?: string; ramdisk?: string; visibility?: string }[]> {
  const r = await runCli(["image", "list", "--cloud", "env-euca", "--json"], env);
  assert.equal(r.code, 0, r.stderr);
  const images = doneOf(r.stdout, "image list").images as ProviderImage[];
  return images.map((i) => ({
    id: i.id,
    name: i.name,
    kernel: i.properties?.kernel_id,
    ramdisk: i.properties?.ramdisk_id,
    visibility: i.visibility,
  }));
}

/**
 * The one image the cloud holds, checked in its registry and through `image list` (DescribeImages): the name
 * asked for, with the instance's kernel, ramdisk and architecture.
 */
async function onlyImage(env: NodeJS.ProcessEnv, id: string, name: string): Promise<RegisteredImage> {
  const registered = [...server.images.images.values()];
  assert.deepEqual(
    registered.map((i) => ({
      id: i.imageId,
      name: i.name,
      kernel: i.kernelId,
      ramdisk: i.ramdiskId,
      arch: i.architecture,
    })),
    [{ id, name, kernel: KERNEL, ramdisk: RAMDISK, arch: "x86_64" }],
    "exactly one image is registered (no temporary one left)",
  );
  // Made with --public --share MEMBER: DescribeImages says public, DescribeImageAttribute names the member.
  assert.deepEqual(await listed(env), [{ id, name, kernel: KERNEL, ramdisk: RAMDISK, visibility: "public" }]);
  const ec2 = new Ec2Connection({
    name: "env-euca",
    kind: "eucalyptus",
    source: "test",
    ec2Url: `${server.url}/services/compute`,
    region: "us-east-1",
    ...SWIFT_USERS.tester,
    tls: { verify: true },
  });
  try {
    assert.deepEqual(await getLaunchPermissions(ec2, id), { userIds: [MEMBER], all: true });
  } finally {
    ec2.destroy();
  }
  return registered[0]!;
}

async function objects(bucket: string): Promise<string[]> {
  const keys: string[] = [];
  try {
    for await (const o of listObjects(s3, bucket, "")) keys.push(o.key);
  } catch (e) {
    if (!/NoSuchBucket/.test((e as Error).message)) throw e;
  }
  return keys.sort();
}

const nodeFlags = (knownHosts: string) => [
  "--node-ssh-key",
  join(sshd.dir, "client"),
  "--node-known-hosts",
  knownHosts,
  "--node-port",
  String(sshd.port),
  "--node-user",
  sshd.username,
  "--node-instances-dir",
  instancesDir,
];

test("node copy: the node's disk bundled, uploaded and registered with its kernel and ramdisk; nothing left", async (t) => {
  const { work, tmp, bucket, env, actions } = await eucarc(t);
  const r = await runCli(
    [
      "image",
      "create",
      "--cloud",
      "env-euca",
      ...nodeFlags(sshd.knownHostsPath),
      NODE_COPIED,
      "copied",
      ...SHARED,
      "--json",
    ],
    env,
  );
  assert.equal(r.code, 0, r.stderr + r.stdout);
  // The node found through the admin calls; the temporary image registered, read, and deregistered.
  assert.ok(actions().includes("DescribeServices"), actions().join(" "));
  assert.equal(count(actions(), "BundleInstance"), 0);
  assert.equal(count(actions(), "RegisterImage"), 2, actions().join(" "));
  assert.equal(count(actions(), "DeregisterImage"), 1, actions().join(" "));
  const done = doneOf(r.stdout, "image create") as unknown as { image: { id: string; name: string } };
  assert.equal(done.image.name, "copied");
  const image = await onlyImage(env, done.image.id, "copied");
  const stored = await objects(bucket);
  const prefix = image.location.slice(bucket.length + 1, -".manifest.xml".length);
  assert.ok(stored.length >= 2, `a manifest and parts: ${stored.join(", ")}`);
  assert.ok(
    stored.every((k) => k.startsWith(`${prefix}.`)),
    `only the new image's bundle is in the bucket (the temporary one's was removed): ${stored.join(", ")}`,
  );
  const out = join(work, "out.raw");
  const e = await runCli(["export", "--cloud", "env-euca", "--image", "copied", "--format", "raw", out], env);
  assert.equal(e.code, 0, e.stderr);
  assert.equal(await sha1(out), await sha1(disks.get(NODE_COPIED)!), "the image reads back as the node's disk");
  assert.deepEqual(
    (await readdir(tmp)).filter((n) => n.startsWith("chromogenic-node-copy-")),
    [],
    "no local copy of the disk is left",
  );
});

test("node copy to a node whose host key is not the one known: a clear refusal, nothing registered or stored", async (t) => {
  const { work, tmp, bucket, env } = await eucarc(t);
  const otherHosts = join(work, "known_hosts");
  await writeFile(
    otherHosts,
    `[127.0.0.1]:${sshd.port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n`,
  );
  const r = await runCli(
    ["image", "create", "--cloud", "env-euca", ...nodeFlags(otherHosts), NODE_COPIED, "refused", "--json"],
    env,
  );
  assert.notEqual(r.code, 0);
  assert.match(
    errorOf(r.stdout).message,
    /refusing node controller 127\.0\.0\.1:\d+: its host key SHA256:\S+ does not match .*known_hosts/,
  );
  assert.deepEqual(
    [...server.images.images.values()].map((i) => i.name),
    [],
  );
  assert.deepEqual(await objects(bucket), []);
  assert.deepEqual(
    (await readdir(tmp)).filter((n) => n.startsWith("chromogenic-node-copy-")),
    [],
  );
});

test("BundleInstance: the cloud's bundle of the disk registered as NAME with kernel and ramdisk, in the cloud", async (t) => {
  const { work, bucket, env, actions } = await eucarc(t);
  const r = await runCli(["image", "create", "--cloud", "env-euca", BUNDLED, "bundled", ...SHARED, "--json"], env);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.equal(count(actions(), "BundleInstance"), 1, actions().join(" "));
  assert.equal(count(actions(), "RegisterImage"), 1, actions().join(" "));
  assert.equal(count(actions(), "DeregisterImage"), 0, actions().join(" "));
  const done = doneOf(r.stdout, "image create") as unknown as { image: { id: string; name: string } };
  const image = await onlyImage(env, done.image.id, "bundled");
  const location = image.location;
  assert.match(location, new RegExp(`^${bucket}/${BUNDLED}-[0-9a-f]{8}\\.manifest\\.xml$`));
  const prefix = location.slice(bucket.length + 1, -".manifest.xml".length);
  const stored = await objects(bucket);
  assert.ok(
    stored.every((k) => k.startsWith(`${prefix}.`)),
    stored.join(", "),
  );
  // The node wrapped the bundle's key for the cloud alone: the cloud's key (and the node's certificate for the
  // signature) read it back as the instance's disk; the user's key cannot, and says so.
  const cloudSide = join(work, "cloud-side");
  await mkdir(cloudSide);
  const u = await runCli(
    [
      "unbundle",
      "--bucket",
      bucket,
      "-m",
      `${prefix}.manifest.xml`,
      "-k",
      keys.cloudKey,
      "-c",
      keys.otherCert,
      "-d",
      cloudSide,
    ],
    env,
  );
  assert.equal(u.code, 0, u.stderr);
  assert.equal(await sha1(join(cloudSide, prefix)), await sha1(disks.get(BUNDLED)!));
  const e = await runCli(
    ["export", "--cloud", "env-euca", "--image", "bundled", "--format", "raw", join(work, "x.raw")],
    env,
  );
  assert.notEqual(e.code, 0);
  assert.match(
    e.stderr,
    new RegExp(`s3://${bucket}/${prefix}\\.manifest\\.xml: the manifest's signature does not match`),
  );
  assert.match(e.stderr, /BundleInstance\) is signed by a node controller and opens only with the cloud's private key/);
});

test("an administrator exports the cloud's BundleInstance image with the cloud's key: checks, then qcow2 equal to the disk", async (t) => {
  const { work, env } = await eucarc(t);
  const made = await runCli(["image", "create", "--cloud", "env-euca", BUNDLED, "admin-read", "--json"], env);
  assert.equal(made.code, 0, made.stderr + made.stdout);
  const keyText = await readFile(keys.cloudKey, "utf8");
  const secretLine = keyText.split("\n")[1]!;
  const exportWith = async (out: string, ...flags: string[]) => {
    const r = await runCli(
      ["export", "--cloud", "env-euca", "--image", "admin-read", "--format", "qcow2", ...flags, join(work, out)],
      env,
    );
    assert.ok(!(r.stdout + r.stderr).includes(secretLine), "the cloud's key never shows");
    return r;
  };
  // A key others can read is refused, as ssh refuses one, naming the file and its mode.
  const loose = join(work, "cloud-loose.key");
  await copyFile(keys.cloudKey, loose);
  await chmod(loose, 0o644);
  const tooOpen = await exportWith("a.qcow2", "--cloud-private-key", loose, "--bundle-signer-cert", keys.otherCert);
  assert.equal(tooOpen.code, 2, tooOpen.stderr);
  assert.match(
    tooOpen.stderr,
    new RegExp(`${loose}: the cloud's private key is readable or writable by others \\(mode 0644\\)`),
  );
  // Skipping the signature check needs the cloud's key.
  const noKey = await exportWith("b.qcow2", "--skip-bundle-signature-check");
  assert.equal(noKey.code, 2, noKey.stderr);
  assert.match(noKey.stderr, /--skip-bundle-signature-check goes with the cloud's private key/);
  // The cloud's key with a certificate that did not sign it (the user's): refused, saying which one to give.
  const wrongSigner = await exportWith(
    "c.qcow2",
    "--cloud-private-key",
    keys.cloudKey,
    "--bundle-signer-cert",
    keys.userCert,
  );
  assert.equal(wrongSigner.code, 1, wrongSigner.stderr);
  assert.match(wrongSigner.stderr, /the manifest's signature does not match.*--bundle-signer-cert/);
  assert.deepEqual(
    (await readdir(work)).filter((n) => n.includes("qcow2")),
    [],
    "nothing under an output's name",
  );

  const good = await exportWith(
    "good.qcow2",
    "--cloud-private-key",
    keys.cloudKey,
    "--bundle-signer-cert",
    keys.otherCert,
  );
  assert.equal(good.code, 0, good.stderr);
  assert.doesNotMatch(good.stderr, /WITHOUT checking/);
  assert.equal((await qemuCompare(disks.get(BUNDLED)!, join(work, "good.qcow2"))).code, 0, "the export is the disk");
  // Unchecked, at the administrator's explicit word: it reads, and says loudly what was not checked.
  const unchecked = await exportWith(
    "unchecked.qcow2",
    "--cloud-private-key",
    keys.cloudKey,
    "--skip-bundle-signature-check",
  );
  assert.equal(unchecked.code, 0, unchecked.stderr);
  assert.match(unchecked.stderr, /warning: .*manifest is taken WITHOUT checking its signature/);
  assert.equal((await qemuCompare(disks.get(BUNDLED)!, join(work, "unchecked.qcow2"))).code, 0);
});

test("export --instance of an instance-store instance with the cloud's key: bundled by the cloud, read, then removed", async (t) => {
  const { work, bucket, env, actions } = await eucarc(t);
  const out = join(work, "instance.raw");
  const adminKeys = ["--cloud-private-key", keys.cloudKey, "--bundle-signer-cert", keys.otherCert];
  const r = await runCli(
    ["export", "--cloud", "env-euca", "--instance", BUNDLED, "--format", "raw", ...adminKeys, out, "--json"],
    env,
  );
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.equal(count(actions(), "BundleInstance"), 1, actions().join(" "));
  assert.equal(await sha1(out), await sha1(disks.get(BUNDLED)!), "the export is the instance's disk");
  // The temporary image of the instance is deregistered and its bundle removed.
  assert.deepEqual(
    [...server.images.images.values()].map((i) => i.name),
    [],
  );
  assert.deepEqual(await objects(bucket), []);
});

test("a bundle task that fails: a clear error naming the task and the cloud's reason, nothing registered", async (t) => {
  const { bucket, env } = await eucarc(t);
  const r = await runCli(["image", "create", "--cloud", "env-euca", FAILING, "never", "--json"], env);
  assert.notEqual(r.code, 0);
  assert.match(
    errorOf(r.stdout).message,
    new RegExp(
      `Eucalyptus bundle task bun-[0-9a-f]{8} of instance ${FAILING} failed \\(Client\\.BundlingFailed: no space left on the node\\)`,
    ),
  );
  assert.deepEqual(
    [...server.images.images.values()].map((i) => i.name),
    [],
  );
  assert.deepEqual(await objects(bucket), []);
});
