/**
 * A process for the kill -9 test of resumable multipart uploads: uploads FILE to s3://BUCKET/KEY on the test
 * Swift in 5 MiB parts, one at a time, writing the upload's state to STATE (atomically, as a job's journal
 * would) after each part, and pausing after each so the test can kill it between parts.
 *
 *   node multipart-upload-child.js ENDPOINT BUCKET KEY FILE STATE
 */
import { createReadStream } from "node:fs";
import { rename, writeFile } from "node:fs/promises";
import { setTimeout as delay } from "node:timers/promises";
import { S3Connection } from "../../src/providers/ec2/s3-connection.js";
import { MIN_PART_SIZE, uploadMultipart } from "../../src/providers/ec2/s3-multipart-upload.js";
import { SWIFT_USERS } from "./swift-s3.js";

const [endpoint, bucket, key, file, statePath] = process.argv.slice(2) as [string, string, string, string, string];
const s3 = new S3Connection({ cloud: "swift-test", endpoint, region: "us-east-1", ...SWIFT_USERS.tester });
await uploadMultipart(s3, bucket, key, createReadStream(file), {
  partSize: MIN_PART_SIZE,
  concurrency: 1,
  onState: async (state) => {
    await writeFile(`${statePath}.tmp`, JSON.stringify(state));
    await rename(`${statePath}.tmp`, statePath);
    await delay(300);
  },
});
