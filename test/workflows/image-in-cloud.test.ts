/**
 * `image create` of an EBS-backed instance on the EC2 test server (OpenStack's ec2-api on the stack: its
 * CreateImage images a volume-backed Nova server through Cinder). Such an image is a snapshot that the EC2 API
 * cannot read out, so the cloud makes it under the name asked for and no byte moves; a job that would need the
 * bytes (--clean, --format) is refused before anything is made, and so is exporting the image.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { DescribeInstancesCommand } from "@aws-sdk/client-ec2";
import { randomUUID } from "node:crypto";
import { ec2Client, eucarcEnv, requireEc2Api, type Ec2ApiStack } from "../helpers/ec2-api-stack.js";
import { doneOf } from "../helpers/event-lines.js";
import { runCli, scratch } from "../helpers/tools.js";

let stack: Ec2ApiStack;
let instanceId: string;

before(async () => {
  stack = await requireEc2Api();
  const reply = await ec2Client(stack).send(new DescribeInstancesCommand({}));
  const found = (reply.Reservations ?? [])
    .flatMap((r) => r.Instances ?? [])
    .find((i) => i.PrivateDnsName === stack.volumeBackedServer);
  assert.ok(found?.InstanceId, `ec2-api lists no instance for the server ${stack.volumeBackedServer}`);
  assert.equal(found.RootDeviceType, "ebs");
  instanceId = found.InstanceId;
});

test("image create of an EBS-backed instance: made in the cloud under its name; what needs its bytes is refused", async (t) => {
  const dir = await scratch(t);
  const env = eucarcEnv(stack, dir);
  const name = `ebs-${randomUUID().slice(0, 8)}`;

  const refused = await runCli(["image", "create", "--cloud", "env-euca", "--clean", "default", instanceId, name], env);
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(
    refused.stderr,
    new RegExp(`${instanceId}.s image cannot be read out of the cloud .*which --clean needs`),
  );

  const r = await runCli(["image", "create", "--json", "--cloud", "env-euca", instanceId, name], env);
  assert.equal(r.code, 0, r.stderr);
  const done = doneOf(r.stdout, "image create") as unknown as {
    plan: { notes: string[]; temporaryBytes: number };
    image: { id: string; name: string };
  };
  assert.equal(done.image.name, name);
  assert.match(done.image.id, /^ami-/);
  assert.equal(done.plan.temporaryBytes, 0);
  assert.ok(
    done.plan.notes.some((n) => /no byte moved/.test(n)),
    done.plan.notes.join("; "),
  );
  t.after(() => runCli(["image", "delete", "--cloud", "env-euca", done.image.id], env).then(() => undefined));

  const listed = await runCli(["image", "list", "--json", "--cloud", "env-euca"], env);
  assert.equal(listed.code, 0, listed.stderr);
  const images = (doneOf(listed.stdout, "image list") as unknown as { images: { id: string; name: string }[] }).images;
  assert.deepEqual(
    images.filter((i) => i.name === name).map((i) => i.id),
    [done.image.id],
    "exactly one image of that name",
  );

  const exported = await runCli(
    ["export", "--cloud", "env-euca", "--image", done.image.id, "--format", "raw", `${dir}/out.raw`],
    env,
  );
  assert.equal(exported.code, 2, exported.stderr);
  assert.match(exported.stderr, /is EBS-backed \(a snapshot\): the EC2 API gives no way to read its bytes/);
});
