/**
 * The Eucalyptus workflows through the CLI against real servers: OpenStack's ec2-api (EC2) and Swift's S3 on
 * the test stack stand for a Eucalyptus cloud named `env-euca` by the eucarc variables (see
 * test/helpers/ec2-api-stack.ts). ec2-api's RegisterImage fetches each bundle from Swift, decrypts it with the
 * cloud's key and stores the image in Glance, so a Glance image equal to the disk proves a real server accepted
 * our bundle; our own reads verify the manifest's signature and every part's digest.
 * - `image upload` → `image list` → the Glance copy → `export` to qcow2 and to a VirtualBox OVA → `image delete`
 *   (deregistered, no object of the bundle left);
 * - `migrate` local → Eucalyptus with --clean (the bundle holds the cleaned guest, registered with the
 *   architecture its init has), OpenStack → Eucalyptus (qcow2 → raw bundle), Eucalyptus → OpenStack (as it is, and a Xen guest
 *   whose EKI/ERI become its own kernel: it boots on KVM), Eucalyptus → Eucalyptus into another bucket;
 * - `euca:REGION` from euca2ools .ini files (EUCA_CONFIG_PATH) in place of the eucarc variables;
 * - failures: a missing cloud certificate, RegisterImage refused, a bundle the cloud cannot open, a wrong secret,
 *   a canned ACL Swift refuses: clear errors, no object left in the bucket, no image registered;
 * - `image create` of the stack's stopped volume-backed server (EBS-backed: CreateImage).
 * Images stay small: ec2-api's RegisterImage uploads to Glance with a token that lives 90 s here.
 * The Xen test needs root (loop devices, mounts) and qemu-system-x86.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createReadStream } from "node:fs";
import { randomUUID } from "node:crypto";
import { spawn } from "node:child_process";
import { mkdir, rm, stat, writeFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { join } from "node:path";
import { DescribeInstancesCommand, DescribeSnapshotsCommand } from "@aws-sdk/client-ec2";
import { HeadBucketCommand } from "@aws-sdk/client-s3";
import { OpenStackProvider } from "../../src/providers/openstack/openstack-provider.js";
import { KeystoneSession } from "../../src/providers/openstack/keystone-session.js";
import { NovaClient } from "../../src/providers/openstack/nova-client.js";
import type { S3Connection } from "../../src/providers/ec2/s3-connection.js";
import { deleteObject } from "../../src/providers/ec2/s3-objects.js";
import { ec2Client, ec2UserCloud, requireEc2Api, s3Connection, type Ec2ApiStack } from "../helpers/ec2-api-stack.js";
import { makeBundleKeys, type BundleKeys } from "../helpers/euca2ools.js";
import { stackCloud } from "../helpers/openstack-stack.js";
import { doneOf, eventLines } from "../helpers/event-lines.js";
import { bootToLogin } from "../helpers/boot-in-qemu.js";
import { XEN_GUEST_HOSTNAME, xenBareExt4Guest } from "../helpers/xen-guests.js";
import { CLI, makeRaw, mixedRegions, pattern, qemuImg, runCli, sha256File } from "../helpers/tools.js";
import { historyGuestDisk, historyGuestFile, PLANTED_HISTORY_LINE } from "../helpers/guest-images.js";
import { startThrottleProxy, writeCloudsYaml } from "./helpers/workflow-stack.js";
import { assertSameDisk, jobFolders, onlyJob, ovaDisk, scratchDir, type DoneEvent } from "./helpers/workflow-steps.js";
import {
  bucketKeys,
  bundleAt,
  cliOk,
  defaultBucket,
  deleteEucaImage,
  ec2Image,
  ec2ProjectGlance,
  eucaEnv,
  glanceBytes,
  glanceImageOf,
  glanceImagesNamed,
  listedImages,
  removeBucket,
  uploadToEuca,
} from "./helpers/eucalyptus-cloud.js";

const MiB = 2 ** 20;
/** Not a whole number of MiB, nor of the 10 MiB bundle parts: the last part and the tail are short. */
const DISK_SIZE = 24 * MiB + 3584;
const tag = randomUUID().slice(0, 8);
const OTHER_BUCKET = `chromo-euca-other-${tag}`;
/** The OpenStack cloud (clouds.yaml) the migrations go to and come from: user A in RegionOne. */
const OPENSTACK = "a1";

let stack: Ec2ApiStack;
let keys: BundleKeys;
let dir: string;
let env: NodeJS.ProcessEnv;
let s3: S3Connection;
let glance: OpenStackProvider;
/** A small disk: data, zeros written as data, holes, a region across a MiB boundary, an odd tail. */
let disk: string;
const a1 = new OpenStackProvider(stackCloud("user-a", "RegionOne"));
const eucaMade: string[] = [];
const openstackMade: string[] = [];

before(async () => {
  stack = await requireEc2Api();
  dir = await scratchDir("chromo-euca-wf-");
  keys = await makeBundleKeys(dir);
  const clouds = await writeCloudsYaml(dir, { [OPENSTACK]: { user: "user-a", region: "RegionOne" } });
  env = eucaEnv(stack, keys, { clouds, state: join(dir, "state") });
  s3 = s3Connection(stack);
  glance = ec2ProjectGlance(stack);
  disk = join(dir, "disk.raw");
  await makeRaw(disk, DISK_SIZE, mixedRegions(DISK_SIZE));
});

after(async () => {
  for (const id of eucaMade) await deleteEucaImage(env, id);
  for (const id of openstackMade) await a1.deleteImage(id).catch(() => undefined);
  if (s3) await removeBucket(s3, OTHER_BUCKET);
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A name unique to this run. */
const unique = (what: string) => `chromo-euca-${what}-${tag}`;

/** `image upload` of `file` to env-euca, deleted after the suite. */
async function uploaded(file: string, name: string, ...args: string[]) {
  const image = await uploadToEuca(env, file, name, ...args);
  eucaMade.push(image.id);
  return image;
}

/** What a migrate's done event tells beyond the common fields. */
type MigrateDone = DoneEvent & {
  plan: { sourceFormat?: string; targetFormat?: string; bootable?: boolean };
  bootable?: { loader?: string; xenToKvm?: { xenGuest?: boolean } };
};

/** `migrate --json --from FROM --to TO --image IMAGE --name NAME ...extra`, which must succeed. */
async function migrate(
  o: { from: string; to: string; image: string; name: string },
  ...extra: string[]
): Promise<{ stdout: string; done: MigrateDone }> {
  const args = ["migrate", "--json", "--from", o.from, "--to", o.to, "--image", o.image, "--name", o.name, ...extra];
  const r = await cliOk(args, env);
  return { stdout: r.stdout, done: doneOf(r.stdout, "migrate") as unknown as MigrateDone };
}

/** `export --cloud env-euca --image IMAGE --format raw` into the scratch folder: the file. */
async function exportRaw(image: string, file: string): Promise<string> {
  const out = join(dir, file);
  await cliOk(["export", "--cloud", "env-euca", "--image", image, "--format", "raw", out], env);
  return out;
}

test("image upload → list → the cloud's own copy → export qcow2 and VirtualBox OVA → image delete leaves nothing", async () => {
  const name = unique("round-trip");
  const image = await uploaded(disk, name);
  assert.match(image.id, /^[ae]mi-[0-9a-f]{8}$/);
  assert.equal(image.state, "ready");
  assert.equal(image.sizeBytes, DISK_SIZE, "the size the manifest declares");
  const location = image.properties.image_location!;
  const bundle = bundleAt(location);
  assert.equal(bundle.bucket, defaultBucket(stack), "no --bucket: chromogenic-ACCOUNT");
  const stored = await bucketKeys(s3, bundle.bucket, bundle.prefix);
  assert.ok(stored.includes(`${bundle.prefix}manifest.xml`), `the manifest is in the bucket: ${stored.join(", ")}`);
  assert.ok(stored.includes(`${bundle.prefix}part.00`), `the first part is in the bucket: ${stored.join(", ")}`);
  assert.ok(
    stored.every((k) => /\.(manifest\.xml|part\.\d{2,})$/.test(k)),
    `only the bundle: ${stored.join(", ")}`,
  );
  const listed = (await listedImages(env)).find((i) => i.id === image.id);
  assert.ok(listed, `image list shows ${image.id}`);
  assert.equal(listed.name, name);
  assert.equal(listed.state, "ready");

  // ec2-api decrypted our bundle with the cloud's key and stored what it holds in Glance: the disk, byte for byte.
  const inGlance = await glanceImageOf(glance, location);
  assert.ok(inGlance, `ec2-api put no image from ${location} in Glance`);
  const glanceCopy = await glanceBytes(glance, inGlance.id, dir, "round-trip.glance.raw");
  assert.equal(await sha256File(glanceCopy), await sha256File(disk), "the cloud's decryption of our bundle");

  const qcow2 = join(dir, "round-trip.qcow2");
  await cliOk(["export", "--cloud", "env-euca", "--image", name, "--format", "qcow2", qcow2], env);
  assert.equal((JSON.parse(await qemuImg("info", "--output=json", qcow2)) as { format: string }).format, "qcow2");
  await assertSameDisk(disk, qcow2);
  const ova = join(dir, "round-trip.ova");
  await cliOk(
    ["export", "--cloud", "env-euca", "--image", image.id, "--format", "ova", "--target", "virtualbox", ova],
    env,
  );
  const ovaDir = join(dir, "round-trip-ova");
  await mkdir(ovaDir);
  await assertSameDisk(disk, await ovaDisk(ova, ovaDir));

  await cliOk(["image", "delete", "--cloud", "env-euca", image.id], env);
  assert.equal(await ec2Image(stack, image.id), undefined, `${image.id} is deregistered`);
  assert.equal(
    (await listedImages(env)).find((i) => i.id === image.id),
    undefined,
    "image list no longer shows it",
  );
  assert.deepEqual(await bucketKeys(s3, bundle.bucket, bundle.prefix), [], "objects of the bundle left");
  assert.equal(await glanceImageOf(glance, location), undefined, "ec2-api's Glance image is gone too");
});

test("migrate OpenStack → Eucalyptus: a qcow2 in Glance becomes a raw bundle ec2-api registers, equal to the disk", async () => {
  const qcow2 = join(dir, "source.qcow2");
  await qemuImg("convert", "-O", "qcow2", disk, qcow2);
  const source = await a1.uploadImage(
    { name: unique("openstack-source"), diskFormat: "qcow2", sizeBytes: (await stat(qcow2)).size },
    createReadStream(qcow2, { highWaterMark: MiB }),
  );
  openstackMade.push(source.id);
  const name = unique("from-openstack");
  const { done } = await migrate({ from: OPENSTACK, to: "env-euca", image: source.id, name });
  eucaMade.push(done.image.id);
  assert.match(done.image.id, /^[ae]mi-/);
  assert.equal(done.plan.sourceFormat, "qcow2");
  assert.equal(done.plan.targetFormat, "raw", "the bundle holds a raw disk");
  const made = await ec2Image(stack, done.image.id);
  assert.equal(made?.State, "available");
  assert.equal(made?.Name, name);
  assert.equal(made?.RootDeviceType, "instance-store");
  // Read back through our verified download, and as the cloud itself decrypted it.
  assert.equal(await sha256File(await exportRaw(done.image.id, "from-openstack.raw")), await sha256File(disk));
  const inGlance = await glanceImageOf(glance, made!.ImageLocation!);
  assert.ok(inGlance, `ec2-api put no image from ${made!.ImageLocation} in Glance`);
  const glanceCopy = await glanceBytes(glance, inGlance.id, dir, "from-openstack.glance.raw");
  assert.equal(await sha256File(glanceCopy), await sha256File(disk));
});

test("migrate local → Eucalyptus --clean: the bundle holds the cleaned guest, its architecture the guest's own", async () => {
  assert.ok(process.getuid?.() === 0, "cleaning mounts the guest: run this suite as root (.ci/run does)");
  const guest = join(dir, "history-guest.raw");
  await historyGuestDisk(guest, dir);
  const store = join(dir, "clean-store");
  await cliOk(["image", "upload", "--cloud", `local:${store}`, guest, "history-guest"], env);
  const name = unique("cleaned");
  const { stdout, done } = await migrate(
    { from: `local:${store}`, to: "env-euca", image: "history-guest", name },
    "--clean",
    "--no-bootable",
  );
  eucaMade.push(done.image.id);
  assert.match(stdout, /"phase":"clean","state":"end"/);
  const made = await ec2Image(stack, done.image.id);
  assert.equal(made?.Architecture, "i386", "the guest's init is i386: registered so, not as x86_64");
  const back = await exportRaw(done.image.id, "cleaned.raw");
  assert.match(await historyGuestFile(back, "/etc/os-release"), /ID=debian/, "the guest reads back");
  assert.ok(
    !(await historyGuestFile(back, "/root/.bash_history")).includes(PLANTED_HISTORY_LINE),
    "the shell history was cleaned before the bundle was made",
  );
});

test("migrate Eucalyptus → OpenStack --no-bootable: the EMI in Glance as qcow2, the same disk", async () => {
  const emi = await uploaded(disk, unique("to-openstack-source"));
  const name = unique("to-openstack");
  const { done } = await migrate({ from: "env-euca", to: OPENSTACK, image: emi.id, name }, "--no-bootable");
  openstackMade.push(done.image.id);
  const made = await a1.getImage(done.image.id);
  assert.equal(made?.name, name);
  assert.equal(made?.state, "ready");
  assert.equal(made?.diskFormat, "qcow2", "the destination's preferred format");
  const copy = await glanceBytes(a1, done.image.id, dir, "to-openstack.qcow2");
  await assertSameDisk(disk, copy);
});

test("migrate Eucalyptus → OpenStack of a Xen guest (EMI + EKI + ERI): made bootable with its own kernel, it boots", async (t) => {
  const guest = await xenBareExt4Guest();
  const eki = await uploaded(guest.kernel!, unique("xen-kernel"), "-f", "raw", "--property", "image_type=kernel");
  const eri = await uploaded(guest.initrd!, unique("xen-ramdisk"), "-f", "raw", "--property", "image_type=ramdisk");
  assert.match(eki.id, /^[ae]ki-/, "registered as a kernel image");
  assert.match(eri.id, /^[ae]ri-/, "registered as a ramdisk image");
  const emi = await uploaded(
    guest.disk,
    unique("xen-root"),
    "-f",
    "raw",
    "--property",
    `kernel_id=${eki.id}`,
    "--property",
    `ramdisk_id=${eri.id}`,
  );
  assert.equal(emi.properties.kernel_id, eki.id, "the EMI names its kernel");
  assert.equal(emi.properties.ramdisk_id, eri.id, "the EMI names its ramdisk");
  assert.equal(emi.xenGuest, true);

  const name = unique("xen-on-kvm");
  const { stdout, done } = await migrate({ from: "env-euca", to: OPENSTACK, image: emi.id, name }, "--format", "qcow2");
  openstackMade.push(done.image.id);
  assert.equal(done.plan.bootable, true, "a source that names a kernel is made bootable without being asked");
  assert.equal(done.bootable?.xenToKvm?.xenGuest, true);
  const messages = eventLines(stdout).flatMap((e) => (e.event === "message" ? [e.text] : []));
  for (const [role, id] of [
    ["kernel", eki.id],
    ["ramdisk", eri.id],
  ]) {
    assert.ok(
      messages.some((m) => m.includes(`source's ${role} ${id}`)),
      `the ${role} ${id} fetched from the source cloud: ${messages.join(" | ")}`,
    );
  }
  const made = await a1.getImage(done.image.id);
  assert.equal(made?.properties?.kernel_id, undefined, "the new image still names an external kernel");
  assert.equal(made?.properties?.ramdisk_id, undefined, "the new image still names an external ramdisk");
  const copy = await glanceBytes(a1, done.image.id, dir, "xen-on-kvm.qcow2");
  const boot = await bootToLogin(copy, { format: "qcow2", bus: "virtio", signal: t.signal });
  assert.match(boot.serial, new RegExp(`${XEN_GUEST_HOSTNAME} login:`));
});

test("migrate Eucalyptus → Eucalyptus --bucket: re-bundled into the other bucket, registered, reads back equal", async () => {
  const source = await uploaded(disk, unique("euca-source"));
  const name = unique("euca-copy");
  const { done } = await migrate(
    { from: "env-euca", to: "env-euca", image: source.id, name },
    "--bucket",
    OTHER_BUCKET,
  );
  eucaMade.push(done.image.id);
  assert.notEqual(done.image.id, source.id);
  const made = await ec2Image(stack, done.image.id);
  assert.equal(made?.State, "available");
  const bundle = bundleAt(made!.ImageLocation!);
  assert.equal(bundle.bucket, OTHER_BUCKET, "the new bundle is in the other bucket");
  const stored = await bucketKeys(s3, OTHER_BUCKET, bundle.prefix);
  assert.ok(
    stored.includes(`${bundle.prefix}manifest.xml`) && stored.includes(`${bundle.prefix}part.00`),
    stored.join(),
  );
  const sourceBundle = bundleAt(source.properties.image_location!);
  assert.equal(sourceBundle.bucket, defaultBucket(stack));
  assert.equal((await bucketKeys(s3, OTHER_BUCKET, sourceBundle.prefix)).length, 0, "the source's objects not copied");
  assert.equal(await sha256File(await exportRaw(done.image.id, "euca-copy.raw")), await sha256File(disk));
  // The cloud opened the new bundle with its own key.
  const inGlance = await glanceImageOf(glance, made!.ImageLocation!);
  assert.ok(inGlance, "ec2-api registered the new bundle");
  await cliOk(["image", "delete", "--cloud", "env-euca", done.image.id], env);
  assert.deepEqual(await bucketKeys(s3, OTHER_BUCKET, bundle.prefix), [], "the copy's objects left after delete");
});

test("euca:REGION from euca2ools .ini files: listed without secrets, an image stored and read back through it", async () => {
  // The region's `name` is the signing region Swift checks; the user section holds the keys, as euca2ools keeps them.
  const ini = join(dir, "euca2ools.ini");
  await writeFile(
    ini,
    [
      "[region ec2-stack]",
      "name = us-east-1",
      `ec2-url = ${stack.ec2Url}`,
      `s3-url = ${stack.s3Url}`,
      `certificate = ${stack.cloudCert}`,
      "user = tester",
      "",
      "[user tester]",
      `key-id = ${stack.accessKeyId}`,
      `secret-key = ${stack.secretAccessKey}`,
      `account-id = ${stack.projectId}`,
      `certificate = ${keys.userCert}`,
      `private-key = ${keys.userKey}`,
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  const iniEnv: NodeJS.ProcessEnv = Object.fromEntries(
    Object.entries(env).filter(([k]) => !/^(EC2_|S3_URL$|EUCALYPTUS_CERT$|AWS_)/.test(k)),
  );
  iniEnv.EUCA_CONFIG_PATH = ini;
  const clouds = await cliOk(["clouds", "--json"], iniEnv);
  assert.ok(clouds.stdout.includes("euca:ec2-stack"), `clouds lists euca:ec2-stack: ${clouds.stdout}`);
  assert.ok(!clouds.stdout.includes(stack.secretAccessKey), "clouds shows the secret key");
  assert.ok(!clouds.stdout.includes("env-euca"), "no eucarc variables in this environment");

  const name = unique("ini");
  const r = await cliOk(["image", "upload", "--cloud", "euca:ec2-stack", "--json", disk, name], iniEnv);
  const image = doneOf(r.stdout, "image upload") as unknown as { id: string };
  eucaMade.push(image.id);
  assert.equal((await ec2Image(stack, image.id))?.State, "available");
  const out = join(dir, "ini.qcow2");
  await cliOk(["export", "--cloud", "euca:ec2-stack", "--image", image.id, "--format", "qcow2", out], iniEnv);
  await assertSameDisk(disk, out);
  await cliOk(["image", "delete", "--cloud", "euca:ec2-stack", image.id], iniEnv);
  assert.equal(await ec2Image(stack, image.id), undefined, "deregistered");
});

test("kill -9 while the bundle is uploaded, then resume: the image is made and no stray object stays", async (t) => {
  // An incompressible disk of three parts, sent through a 1 MiB/s proxy to Swift so the job is caught mid-upload.
  const source = join(dir, "incompressible.raw");
  await writeFile(source, pattern(25 * MiB, 21));
  const store = join(dir, "local-store");
  await cliOk(["image", "upload", "--cloud", `local:${store}`, source, "incompressible"], env);
  const slow = await startThrottleProxy({ host: "127.0.0.1", port: Number(new URL(stack.s3Url).port) }, MiB);
  t.after(() => slow.close());
  const name = unique("resumed");
  const resumedIds: string[] = [];
  t.after(async () => {
    for (const id of resumedIds) await deleteEucaImage(env, id);
    for (const key of await bucketKeys(s3, defaultBucket(stack), `${name}-`)) {
      await deleteObject(s3, defaultBucket(stack), key).catch(() => undefined);
    }
  });
  const args = ["migrate", "--json", "--from", `local:${store}`, "--to", "env-euca", "--image", "incompressible"];
  const before = await jobFolders(join(dir, "state"));
  const child = spawn(process.execPath, [CLI, ...args, "--name", name], {
    env: { ...env, S3_URL: slow.url },
    stdio: "ignore",
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, signal) => resolve(signal)));
  const deadline = Date.now() + 60_000;
  while ((await bucketKeys(s3, defaultBucket(stack), `${name}-`)).length === 0) {
    assert.ok(Date.now() < deadline, "no part reached the bucket within a minute");
    await sleep(200);
  }
  child.kill("SIGKILL");
  assert.equal(await exited, "SIGKILL");
  const left = await bucketKeys(s3, defaultBucket(stack), `${name}-`);
  assert.ok(!left.some((k) => k.endsWith(".manifest.xml")), `killed after the manifest was stored: ${left.join()}`);
  const job = await onlyJob(join(dir, "state"), before);
  assert.ok(job, "the killed job's folder");

  const resumed = await cliOk(["resume", job, "--json"], env);
  const done = doneOf(resumed.stdout, "resume") as unknown as DoneEvent;
  resumedIds.push(done.image.id);
  const made = await ec2Image(stack, done.image.id);
  assert.equal(made?.State, "available");
  assert.equal(made?.Name, name);
  assert.equal(await sha256File(await exportRaw(done.image.id, "resumed.raw")), await sha256File(source));
  const bundle = bundleAt(made!.ImageLocation!);
  const stored = await bucketKeys(s3, bundle.bucket, `${name}-`);
  assert.deepEqual(
    stored.filter((k) => !k.startsWith(bundle.prefix)),
    [],
    `objects of the killed run left beside the resumed bundle ${bundle.prefix}*`,
  );
});

/** No image of that name in EC2 or in the project's Glance, and no object under the name's prefix in the bucket. */
async function assertNothingLeft(name: string, bucket = defaultBucket(stack)): Promise<void> {
  assert.deepEqual(
    (await listedImages(env)).filter((i) => i.name === name).map((i) => i.id),
    [],
    `an image named ${name} is registered`,
  );
  assert.deepEqual(await glanceImagesNamed(glance, name), [], `ec2-api left a Glance image named ${name}`);
  assert.deepEqual(await bucketKeys(s3, bucket, `${name}-`), [], `objects of ${name}'s bundle left in ${bucket}`);
}

test("a missing cloud certificate: a clear error naming it before anything is stored", async () => {
  const name = unique("no-cloud-cert");
  const missing = join(dir, "missing", "cloud-cert.pem");
  const r = await runCli(["image", "upload", "--cloud", "env-euca", disk, name], { ...env, EUCALYPTUS_CERT: missing });
  assert.equal(r.code, 2, r.stderr);
  assert.ok(r.stderr.includes(missing), `the error names ${missing}: ${r.stderr}`);
  assert.match(r.stderr, /certificate/);
  await assertNothingLeft(name);
});

test("RegisterImage refused (a kernel that does not exist) after the whole bundle was stored: it is removed", async () => {
  const name = unique("refused");
  const r = await runCli(
    ["image", "upload", "--cloud", "env-euca", "--property", "kernel_id=aki-0badc0de", disk, name],
    env,
  );
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /refused RegisterImage of .*manifest\.xml as ".*": InvalidAMIID\.NotFound.*aki-0badc0de/);
  await assertNothingLeft(name);
});

test("a bundle the cloud cannot open (encrypted to another certificate): registration fails, nothing is left", async () => {
  const name = unique("wrong-cloud-cert");
  const r = await runCli(["image", "upload", "--cloud", "env-euca", disk, name], {
    ...env,
    EUCALYPTUS_CERT: keys.otherCert,
  });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /ended failed instead of becoming available/);
  await assertNothingLeft(name);
});

test("a wrong secret key: one clear sentence that does not show the secret, nothing left in the bucket", async () => {
  const name = unique("wrong-secret");
  const wrong = `wrong-${randomUUID().replace(/-/g, "")}`;
  const r = await runCli(["image", "upload", "--cloud", "env-euca", disk, name], { ...env, EC2_SECRET_KEY: wrong });
  assert.notEqual(r.code, 0);
  // The first request may be a HEAD, whose refusal has no body to name SignatureDoesNotMatch.
  assert.match(
    r.stderr,
    /SignatureDoesNotMatch|access denied, the reply giving no reason \(a wrong access key or secret/,
  );
  assert.ok(!r.stderr.includes(wrong), "the wrong secret is shown");
  assert.ok(!r.stderr.includes(stack.secretAccessKey), "the real secret is shown");
  assert.ok(!/\n\s+at /.test(r.stderr), `a stack trace instead of a sentence: ${r.stderr}`);
  await assertNothingLeft(name);
});

test("--bucket-acl aws-exec-read, which Swift refuses: the sentence says so, no bucket made, no object left", async () => {
  const name = unique("acl");
  const newBucket = `chromo-euca-acl-${tag}`;
  const refused = await runCli(
    ["image", "upload", "--cloud", "env-euca", "--bucket", newBucket, "--bucket-acl", "aws-exec-read", disk, name],
    env,
  );
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, /CreateBucket .*aws-exec-read.*only Eucalyptus does.*leave the ACL unset/);
  await assert.rejects(s3.client.send(new HeadBucketCommand({ Bucket: newBucket })), "the bucket was made after all");
  // Into the existing bucket: its first object is refused.
  const intoExisting = await runCli(
    ["image", "upload", "--cloud", "env-euca", "--bucket-acl", "aws-exec-read", disk, name],
    env,
  );
  assert.equal(intoExisting.code, 1, intoExisting.stderr);
  assert.match(intoExisting.stderr, /PutObject .*only Eucalyptus does/);
  await assertNothingLeft(name);
});

/** Cinder snapshots named after `names` (Nova names a volume snapshot "snapshot for IMAGE NAME"), deleted. */
async function deleteVolumeSnapshotsFor(names: readonly string[]): Promise<void> {
  const session = new KeystoneSession(ec2UserCloud(stack));
  const cinder = (await session.endpoint("volumev3")).replace(/\/$/, "");
  const headers = { "X-Auth-Token": await session.token(), Accept: "application/json" };
  const listed = (await (await fetch(`${cinder}/snapshots`, { headers })).json()) as {
    snapshots?: { id: string; name?: string }[];
  };
  for (const s of listed.snapshots ?? []) {
    if (names.some((n) => s.name === `snapshot for ${n}`)) {
      await fetch(`${cinder}/snapshots/${s.id}`, { method: "DELETE", headers }).then((r) => r.body?.cancel());
    }
  }
}

test("image create of a stopped volume-backed (EBS) instance: CreateImage makes the image", async (t) => {
  const nova = new NovaClient(new KeystoneSession(ec2UserCloud(stack)));
  const server = await nova.findServer(stack.volumeBackedServer);
  assert.ok(server, `no server "${stack.volumeBackedServer}" in ${stack.project}: run \`aio.sh start ec2\``);
  const reservations = (await ec2Client(stack).send(new DescribeInstancesCommand({}))).Reservations ?? [];
  // ec2-api gives the Nova server's name as the private DNS name.
  const instance = reservations.flatMap((r) => r.Instances ?? []).find((i) => i.PrivateDnsName === server.name);
  assert.ok(instance?.InstanceId, `DescribeInstances does not show ${server.name}`);
  assert.equal(instance.RootDeviceType, "ebs");
  const rootVolume = instance.BlockDeviceMappings?.find((m) => m.DeviceName === instance.RootDeviceName)?.Ebs?.VolumeId;

  const name = unique("from-instance");
  const cleanup: { names: string[]; ids: string[] } = { names: [name], ids: [] };
  t.after(async () => {
    for (const id of cleanup.ids) await deleteEucaImage(env, id);
    await deleteVolumeSnapshotsFor(cleanup.names).catch(() => undefined);
  });
  const r = await runCli(["image", "create", "--cloud", "env-euca", "--json", instance.InstanceId, name], env);
  const job = eventLines(r.stdout).find((e) => "job" in e) as { job?: string } | undefined;
  if (job?.job) cleanup.names.push(`chromogenic-snapshot-${job.job}`);
  assert.equal(r.code, 0, `image create of ${instance.InstanceId}: ${r.stderr}`);
  const done = doneOf(r.stdout, "image create") as unknown as DoneEvent;
  cleanup.ids.push(done.image.id);
  const made = await ec2Image(stack, done.image.id);
  assert.equal(made?.State, "available");
  assert.equal(made?.Name, name);
  assert.equal(made?.RootDeviceType, "ebs");
  const snapshotId = made?.BlockDeviceMappings?.find((m) => m.DeviceName === made.RootDeviceName)?.Ebs?.SnapshotId;
  assert.ok(snapshotId, "the image's root is a snapshot");
  const snapshot = await ec2Client(stack).send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }));
  assert.equal(snapshot.Snapshots?.[0]?.VolumeId, rootVolume, "a snapshot of the instance's root volume");
  const temporary = `chromogenic-snapshot-${done.job}`;
  assert.deepEqual(
    (await listedImages(env)).filter((i) => i.name === temporary).map((i) => i.id),
    [],
    "the job's temporary snapshot image is left",
  );
});
