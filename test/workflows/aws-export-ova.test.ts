/**
 * `export --cloud aws --image ami-… --format ova --target virtualbox`: the AMI's root snapshot read through the
 * EBS direct APIs (GetSnapshotBlock, its listed blocks only, once each) and packed as a VirtualBox OVA in the
 * same pass, with no intermediate disk file. AWS is the test servers written from the AWS API reference
 * (https://docs.aws.amazon.com/ebs/latest/APIReference/API_GetSnapshotBlock.html,
 * https://docs.aws.amazon.com/ebs/latest/APIReference/API_ListSnapshotBlocks.html and EC2's DescribeImages,
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeImages.html), not AWS. The OVA's
 * descriptor is checked against DMTF's schema with VirtualBox's section, its disk with `qemu-img compare`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { addAmi, awsCloud, hybridDisk } from "../helpers/aws/aws-cli-cloud.js";
import { doneOf } from "../helpers/event-lines.js";
import { schemaFor, tarList, xmllintValidate } from "../helpers/ova-tools.js";
import { runCli, runOk } from "../helpers/tools.js";
import { assertSameDisk, ovaDisk } from "./helpers/workflow-steps.js";

test("AWS → VirtualBox OVA in one pass: schema-valid descriptor, the disk equal to the AMI's", async (t) => {
  const { dir, account, ebsServer, env } = await awsCloud(t);
  const disk = join(dir, "disk.raw");
  await hybridDisk(disk, 83);
  const ami = addAmi(account, disk, "to-virtualbox");
  const listed = account.snapshots.get(ami.blockDevices[0]!.snapshotId!)!.blocks.size;
  const ova = join(dir, "ami.ova");
  const r = await runCli(
    ["export", "--cloud", "aws", "--image", ami.id, "--format", "ova", "--target", "virtualbox", "--json", ova],
    env,
  );
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const done = doneOf(r.stdout, "export") as unknown as { plan: { temporaryBytes: number } };
  assert.equal(done.plan.temporaryBytes, 0, "no intermediate copy of the disk");
  assert.equal(ebsServer.stats.calls.GetSnapshotBlock, listed, "each listed block fetched once");

  const members = (await tarList(ova)).map((m) => m.name);
  assert.match(members[0]!, /\.ovf$/, "the descriptor comes first");
  const unpacked = join(dir, "unpacked");
  await mkdir(unpacked);
  await runOk("tar", ["xf", ova, "-C", unpacked, members[0]!]);
  const descriptor = join(unpacked, members[0]!);
  const version = (await readFile(descriptor, "utf8")).includes("schemas.dmtf.org/ovf/envelope/2") ? "2.0" : "1.0";
  const valid = await xmllintValidate(descriptor, schemaFor(version, true));
  assert.equal(valid.code, 0, valid.stderr);
  await assertSameDisk(disk, await ovaDisk(ova, unpacked));
});
