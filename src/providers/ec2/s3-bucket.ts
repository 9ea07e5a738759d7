/**
 * Making sure a bucket exists before anything is put in it, with the canned ACL the cloud wants when it is
 * created. A bucket that exists and is ours is used as it is (its ACL is not changed); one that belongs to
 * another account is an error that says so, rather than the AccessDenied of the first PutObject.
 */
import { CreateBucketCommand, HeadBucketCommand } from "@aws-sdk/client-s3";
import { aclHints, S3Connection } from "./s3-connection.js";
import { AwsServiceError } from "./aws-errors.js";
import { ChromogenicError } from "../../util/errors.js";

/**
 * True when the bucket was created by this call, false when it was there already. `region`: create it there
 * (AWS: a bucket made without a LocationConstraint lands in us-east-1, and a regional endpoint refuses that;
 * us-east-1 itself takes no constraint, https://docs.aws.amazon.com/AmazonS3/latest/API/API_CreateBucket.html).
 */
export async function ensureBucket(
  s3: S3Connection,
  bucket: string,
  signal?: AbortSignal,
  region?: string,
): Promise<boolean> {
  checkBucketName(bucket);
  const subject = S3Connection.location(bucket);
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }), { call: "HeadBucket", subject }, signal);
    return false;
  } catch (e) {
    if (!(e instanceof AwsServiceError) || e.status !== 404) throw e;
  }
  const acl = s3.settings.cannedAcl;
  const withAcl = acl ? ` with the canned ACL ${acl}` : "";
  try {
    await s3.send(
      new CreateBucketCommand({
        Bucket: bucket,
        ...(acl ? { ACL: acl as never } : {}),
        ...(region && region !== "us-east-1"
          ? { CreateBucketConfiguration: { LocationConstraint: region as never } }
          : {}),
      }),
      { call: `CreateBucket${withAcl}`, subject, hints: aclHints(acl) },
      signal,
    );
    return true;
  } catch (e) {
    // Made by someone else between our HEAD and our PUT, or ours already: both mean it is there now.
    if (e instanceof AwsServiceError && e.awsCode === "BucketAlreadyOwnedByYou") return false;
    if (e instanceof AwsServiceError && e.awsCode === "BucketAlreadyExists") {
      throw new ChromogenicError(
        `${e.message}. The name ${bucket} is taken by another account: choose another`,
        "ECLOUD",
        {
          cause: e,
        },
      );
    }
    throw e;
  }
}

/**
 * The rules every S3 server enforces for a new bucket, checked here so that a bad name is a usage error
 * before any request: 3 to 63 characters of lower-case letters, digits, dots and hyphens.
 */
export function checkBucketName(bucket: string): void {
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket) || bucket.includes("..")) {
    throw new ChromogenicError(
      `"${bucket}" is not a bucket name: 3 to 63 lower-case letters, digits, dots and hyphens, ` +
        "starting and ending with a letter or digit",
      "EUSAGE",
    );
  }
}
