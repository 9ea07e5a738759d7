/**
 * `--bucket BUCKET[/PREFIX]` for bundle and unbundle: the bundle's files straight in a bucket of the cloud's S3
 * (no local parts), through the S3 bundle store. The EC2-family modules (the AWS SDK) load only when asked for.
 */
import { UsageError } from "../../util/errors.js";
import type { BundleStore } from "../../formats/bundle/bundle-store.js";

export interface BucketOptions {
  readonly bucket?: string;
  /**
   * The EC2-family cloud whose S3 holds the bucket: `env-euca` (the eucarc variables), `euca:REGION`, or AWS
   * (`aws`, `aws:PROFILE[/REGION]`: an instance-store AMI's bundle, as ec2-upload-bundle stores it).
   */
  readonly cloud: string;
  /** The canned ACL of the bucket and objects (Eucalyptus wants aws-exec-read; Swift and Ceph refuse it). */
  readonly acl?: string;
}

/** The store for `--bucket`, or undefined without it. */
export async function bucketStore(options: BucketOptions): Promise<BundleStore | undefined> {
  if (options.bucket === undefined) return undefined;
  const slash = options.bucket.indexOf("/");
  const bucket = slash < 0 ? options.bucket : options.bucket.slice(0, slash);
  const prefix = slash < 0 ? "" : options.bucket.slice(slash + 1);
  if (!bucket) throw new UsageError(`--bucket ${options.bucket}: BUCKET[/PREFIX] needs a bucket name`);
  const [{ loadEc2CloudConfig }, { S3Connection }, { S3BundleStore }, aws] = await Promise.all([
    import("../../providers/ec2/ec2-cloud-names.js"),
    import("../../providers/ec2/s3-connection.js"),
    import("../../providers/ec2/s3-bundle-store.js"),
    import("../../providers/aws/aws-cloud-config.js"),
  ]);
  const acl = options.acl ? { cannedAcl: options.acl } : {};
  const s3 = aws.isAwsCloudName(options.cloud)
    ? S3Connection.forAws(aws.loadAwsCloudConfig(options.cloud), acl)
    : S3Connection.forCloud(loadEc2CloudConfig(options.cloud), acl);
  return new S3BundleStore(s3, bucket, prefix);
}
