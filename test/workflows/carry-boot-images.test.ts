/**
 * `migrate --no-bootable` of an AMI-style image (a root that boots with its store's kernel and ramdisk images,
 * named by kernel_id/ramdisk_id) into a Eucalyptus-style cloud: the kernel and ramdisk are stored there as kernel
 * and ramdisk images and the new machine image names them, rather than the source's ids, which mean nothing in
 * another cloud. Against the real EC2 (OpenStack's ec2-api: RegisterImage of a kernel bundle gives an aki-…,
 * and a machine bundle naming it is registered with that kernel) and S3 (Swift) of the test stack.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { DescribeImagesCommand } from "@aws-sdk/client-ec2";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ec2Client, eucarcEnv, requireEc2Api, type Ec2ApiStack } from "../helpers/ec2-api-stack.js";
import { makeBundleKeys } from "../helpers/euca2ools.js";
import { doneOf } from "../helpers/event-lines.js";
import { pattern, runCli, scratch } from "../helpers/tools.js";

const MiB = 2 ** 20;
let stack: Ec2ApiStack;

before(async () => {
  stack = await requireEc2Api();
});

test("migrate --no-bootable into an EC2-family cloud: the source's kernel and ramdisk go along as aki/ari images", async (t) => {
  const dir = await scratch(t);
  const keys = await makeBundleKeys(dir);
  const env = eucarcEnv(stack, join(dir, "state"), keys);
  const store = join(dir, "store");
  await mkdir(store);
  const files = { kernel: pattern(3 * MiB + 123, 51), ramdisk: pattern(2 * MiB + 7, 52), root: pattern(16 * MiB, 53) };
  const upload = async (name: keyof typeof files, args: string[]) => {
    const path = join(dir, name);
    await writeFile(path, files[name]);
    const r = await runCli(
      ["image", "upload", "--json", "--cloud", `local:${store}`, "-f", "raw", ...args, path, name],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    return (doneOf(r.stdout, "image upload") as unknown as { id: string }).id;
  };
  const kernel = await upload("kernel", []);
  const ramdisk = await upload("ramdisk", []);
  const root = await upload("root", ["--property", `kernel_id=${kernel}`, "--property", `ramdisk_id=${ramdisk}`]);

  const r = await runCli(
    ["migrate", "--json", "--no-bootable", "--from", `local:${store}`, "--to", "env-euca", "--image", root],
    env,
  );
  assert.equal(r.code, 0, r.stderr);
  const done = doneOf(r.stdout, "migrate") as unknown as { image: { id: string } };
  const [image] = (await ec2Client(stack).send(new DescribeImagesCommand({ ImageIds: [done.image.id] }))).Images ?? [];
  assert.ok(image, `ec2-api does not know ${done.image.id}`);
  assert.match(image.KernelId ?? "", /^aki-/, "the new image names no kernel image of its cloud");
  assert.match(image.RamdiskId ?? "", /^ari-/, "the new image names no ramdisk image of its cloud");
  t.after(async () => {
    for (const id of [done.image.id, image.KernelId!, image.RamdiskId!]) {
      await runCli(["image", "delete", "--cloud", "env-euca", id], env);
    }
  });
  for (const [role, id] of [
    ["kernel", image.KernelId!],
    ["ramdisk", image.RamdiskId!],
  ] as const) {
    const out = join(dir, `${role}.back`);
    const e = await runCli(["export", "--cloud", "env-euca", "--image", id, "--format", "raw", out], env);
    assert.equal(e.code, 0, e.stderr);
    assert.ok((await readFile(out)).equals(files[role]), `the ${role} image ${id} does not hold the source's ${role}`);
  }
});
