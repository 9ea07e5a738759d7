/**
 * A profile's keys (`--cloud aws:PROFILE`, ~/.aws/credentials) through the CLI as installed — the esbuild bundle
 * of bin/chromogenic.js, where the SDK's credential providers are loaded from a chunk of their own — against the
 * EBS direct and EC2 servers written from the AWS API reference
 * (https://docs.aws.amazon.com/ebs/latest/APIReference/API_GetSnapshotBlock.html,
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeImages.html). The library's tests load
 * the providers from node_modules, where they always worked; the bundle once failed every profile.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { addAmi, awsCloud, hybridDisk, withKeysInProfile } from "../../helpers/aws/aws-cli-cloud.js";
import { qemuCompare, runCli } from "../../helpers/tools.js";

test("aws:PROFILE: a profile's static keys sign the CLI's EC2 and EBS calls", async (t) => {
  const { dir, account, env, secret } = await awsCloud(t);
  const withoutKeys = await withKeysInProfile(env, "builder");
  const disk = join(dir, "disk.raw");
  await hybridDisk(disk, 89);
  const ami = addAmi(account, disk, "from-profile");
  const out = join(dir, "out.qcow2");
  const r = await runCli(
    ["export", "--cloud", "aws:builder", "--image", ami.id, "--format", "qcow2", out],
    withoutKeys,
  );
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.ok(!(r.stdout + r.stderr).includes(secret), "the secret key never appears in the output");
  const compared = await qemuCompare(disk, out);
  assert.equal(compared.code, 0, compared.stdout + compared.stderr);
});
