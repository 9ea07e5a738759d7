/**
 * What the AWS task tests share: a fake account, the EC2 test server over it writing to and reading from the
 * real Swift s3api (test/helpers/swift-s3.ts) in a fresh bucket, and a way to fetch an object to a file. The
 * caller has already called requireSwift().
 */
import { GetObjectCommand, type GetObjectCommandOutput } from "@aws-sdk/client-s3";
import { createWriteStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import { ensureBucket } from "../../../src/providers/ec2/s3-bucket.js";
import type { S3Connection } from "../../../src/providers/ec2/s3-connection.js";
import { swiftConnection, testBucket } from "../swift-s3.js";
import { startEc2AwsServer, type Ec2AwsServerOptions } from "./ec2-aws-server.js";
import { FakeAwsAccount } from "./fake-aws-account.js";

export async function awsWithSwift(
  t: { after(fn: () => Promise<void> | void): void },
  options: Ec2AwsServerOptions = {},
) {
  const s3 = swiftConnection();
  t.after(() => s3.destroy());
  const bucket = testBucket(t, s3);
  await ensureBucket(s3, bucket);
  const account = new FakeAwsAccount();
  const { server, ec2 } = await startEc2AwsServer(t, account, { s3, ...options });
  return { account, s3, bucket, server, ec2 };
}

/** The object's bytes into `path`. */
export async function downloadObject(s3: S3Connection, bucket: string, key: string, path: string): Promise<void> {
  const out = await s3.send<GetObjectCommandOutput>(new GetObjectCommand({ Bucket: bucket, Key: key }), {
    call: "GetObject",
  });
  await pipeline(out.Body as NodeJS.ReadableStream, createWriteStream(path));
}
