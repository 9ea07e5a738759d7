/**
 * An instance-store AMI as AWS users make one, for the tests: a disk bundled by `chromogenic bundle --cloud aws
 * --bucket …` (as ec2-bundle-image and ec2-upload-bundle would) into the real Swift s3api standing for AWS's S3
 * (AWS_ENDPOINT_URL_S3; Swift's tempauth keys are the AWS keys, known to the EC2 server too, as AWS knows one
 * key pair), then registered by ImageLocation in the EC2 server written from the reference (ec2-aws-server.ts).
 * `env` is the CLI's environment for the cloud `aws`, with EC2_PRIVATE_KEY and EC2_CERT the bundling user's.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { registerImage } from "../../../src/providers/ec2/ec2-images.js";
import { makeBundleKeys } from "../euca2ools.js";
import { requireSwift, swiftConnection, SWIFT_S3_URL, SWIFT_USERS, testBucket } from "../swift-s3.js";
import { makeRaw, pattern, runCli, scratch } from "../tools.js";
import { awsCliEnv } from "./aws-home.js";
import { startEc2AwsServer } from "./ec2-aws-server.js";
import { FakeAwsAccount } from "./fake-aws-account.js";

const MiB = 2 ** 20;

/** An account whose S3 is Swift, a 48 MiB disk bundled into it and registered as an instance-store AMI. */
export async function instanceStoreAmi(t: { after(fn: () => Promise<void> | void): void }) {
  await requireSwift();
  const dir = await scratch(t, "chromo-aws-bundle-");
  const s3 = swiftConnection();
  t.after(() => s3.destroy());
  const bucket = testBucket(t, s3);
  // Swift checks SigV4 for its own region, us-east-1; the EC2 server knows Swift's key, as AWS knows one key pair.
  const account = new FakeAwsAccount({ region: "us-east-1" });
  const swiftKey = SWIFT_USERS.tester;
  account.credentials.set(swiftKey.accessKeyId, { secretAccessKey: swiftKey.secretAccessKey });
  const { server, ec2 } = await startEc2AwsServer(t, account, { s3 });
  const keys = await makeBundleKeys(dir);
  const env: NodeJS.ProcessEnv = {
    ...awsCliEnv(dir, swiftKey, account.region),
    AWS_ENDPOINT_URL_EC2: server.url,
    AWS_ENDPOINT_URL_S3: SWIFT_S3_URL,
    EC2_PRIVATE_KEY: keys.userKey,
    EC2_CERT: keys.userCert,
  };
  const disk = join(dir, "disk.raw");
  await makeRaw(disk, 48 * MiB, [
    { offset: 0, data: pattern(64 * 1024, 5) },
    { offset: 9 * MiB + 77, data: pattern(11 * MiB, 6) },
    { offset: 47 * MiB, data: pattern(MiB, 7) },
  ]);
  const bundled = await runCli(
    [
      "bundle", "-i", disk, "-p", "web", "-r", "x86_64", "-k", keys.userKey, "-c", keys.userCert,
      "--ec2cert", keys.cloudCert, "-u", account.accountId, "--cloud", "aws", "--bucket", `${bucket}/amis`, "-q",
    ],
    env,
  ); // prettier-ignore
  assert.equal(bundled.code, 0, bundled.stderr + bundled.stdout);
  const ami = await registerImage(ec2, {
    manifestLocation: `${bucket}/amis/web.manifest.xml`,
    name: "web-store",
    virtualizationType: "hvm",
  });
  return { dir, s3, bucket, account, ec2, env, keys, disk, ami };
}
