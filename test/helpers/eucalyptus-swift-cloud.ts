/**
 * A Eucalyptus-style cloud made of the documented stand-in EC2 server (eucalyptus-admin-server.ts) and the real
 * Swift (s3api) as its S3: the user's eucarc for it, and RegisterImage checking manifests in Swift. Swift's
 * tempauth key is the cloud's key too, so one eucarc key pair signs EC2 and S3 alike, as on a real cloud.
 */
import type { S3Connection } from "../../src/providers/ec2/s3-connection.js";
import { headObject } from "../../src/providers/ec2/s3-objects.js";
import type { BundleKeys } from "./euca2ools.js";
import type { ImageRegistryOptions } from "./eucalyptus-image-registry.js";
import { SWIFT_S3_URL, SWIFT_USERS } from "./swift-s3.js";

/** RegisterImage accepts a manifest only when it is in Swift (as Eucalyptus reads it at registration). */
export function manifestsInSwift(s3: S3Connection): ImageRegistryOptions {
  return { manifestExists: async (bucket, key) => !!(await headObject(s3, bucket, key).catch(() => undefined)) };
}

export interface SwiftEucarc {
  /** The stand-in server's base URL. */
  readonly serverUrl: string;
  readonly account: string;
  readonly keys: BundleKeys;
  readonly bucket: string;
  /** Job state folder (CHROMOGENIC_STATE_DIR). */
  readonly state: string;
  /** S3 reached here instead of Swift itself (a counting front). */
  readonly s3Url?: string;
}

/** The eucarc variables of Swift's `tester` user for the cloud, with new bundles going to `bucket`. */
export function swiftEucarc(o: SwiftEucarc): NodeJS.ProcessEnv {
  return {
    ...process.env,
    CHROMOGENIC_STATE_DIR: o.state,
    EC2_URL: `${o.serverUrl}/services/compute`,
    S3_URL: o.s3Url ?? SWIFT_S3_URL,
    EC2_ACCESS_KEY: SWIFT_USERS.tester.accessKeyId,
    EC2_SECRET_KEY: SWIFT_USERS.tester.secretAccessKey,
    EC2_USER_ID: o.account,
    EC2_CERT: o.keys.userCert,
    EC2_PRIVATE_KEY: o.keys.userKey,
    EUCALYPTUS_CERT: o.keys.cloudCert,
    AWS_AUTH_REGION: "us-east-1",
    CHROMOGENIC_BUNDLE_BUCKET: o.bucket,
  };
}
