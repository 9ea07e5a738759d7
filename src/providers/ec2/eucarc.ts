/**
 * The cloud a sourced eucarc describes: the variables Eucalyptus writes into the eucarc of a user's
 * credentials zip, and the ones euca2ools 3 reads in their place.
 *
 *   EC2_URL, S3_URL                   endpoints; `REGION::URL` also names the signing region (euca2ools' form)
 *   AWS_ACCESS_KEY_ID, AWS_ACCESS_KEY, EC2_ACCESS_KEY            the access key id, first one set wins
 *   AWS_SECRET_ACCESS_KEY, AWS_SECRET_KEY, EC2_SECRET_KEY        the secret key, likewise
 *   AWS_SESSION_TOKEN, AWS_SECURITY_TOKEN                        a temporary credential's token
 *   AWS_CREDENTIAL_FILE               a file of AWSAccessKeyId= / AWSSecretKey= lines, read when the variables
 *                                     give no key pair (a eucarc points it at the zip's iamrc)
 *   EC2_USER_ID                       the account number, for bundles
 *   EC2_CERT, EC2_PRIVATE_KEY         the user's certificate and key, which sign bundles
 *   EUCALYPTUS_CERT                   the cloud's certificate, to which bundle keys are encrypted
 *   AWS_AUTH_REGION                   the signing region when EC2_URL does not name one (default "eucalyptus")
 */
import { readFileSync, statSync } from "node:fs";
import {
  checkedConfig,
  cloudKind,
  splitRegionUrl,
  tlsFromEnvironment,
  type Ec2CloudConfig,
} from "./ec2-cloud-config.js";
import { ChromogenicError } from "../../util/errors.js";

type Env = Readonly<Record<string, string | undefined>>;

export const EUCARC_CLOUD = "env-euca";
/** The signing region when nothing names one: the region Eucalyptus' DescribeRegions reports as its own. */
export const DEFAULT_EUCALYPTUS_REGION = "eucalyptus";
const MAX_CREDENTIAL_FILE_BYTES = 64 * 1024;

const first = (env: Env, ...names: string[]) => names.map((n) => env[n]).find((v) => v);

/** The eucarc's cloud, or undefined when EC2_URL is not set. */
export function eucarcCloud(env: Env): Ec2CloudConfig | undefined {
  if (!env.EC2_URL) return undefined;
  const ec2 = splitRegionUrl(env.EC2_URL);
  const s3 = env.S3_URL ? splitRegionUrl(env.S3_URL) : undefined;
  let accessKeyId = first(env, "AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY", "EC2_ACCESS_KEY");
  let secretAccessKey = first(env, "AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY", "EC2_SECRET_KEY");
  let source = "eucarc variables (EC2_URL, …)";
  if ((!accessKeyId || !secretAccessKey) && env.AWS_CREDENTIAL_FILE) {
    const file = readCredentialFile(env.AWS_CREDENTIAL_FILE);
    accessKeyId = file.accessKeyId;
    secretAccessKey = file.secretAccessKey;
    source = `eucarc variables (EC2_URL, …) and ${env.AWS_CREDENTIAL_FILE}`;
  }
  return checkedConfig({
    name: EUCARC_CLOUD,
    kind: cloudKind(ec2.url),
    source,
    ec2Url: ec2.url,
    ...(s3 ? { s3Url: s3.url } : {}),
    region: ec2.region ?? env.AWS_AUTH_REGION ?? DEFAULT_EUCALYPTUS_REGION,
    accessKeyId: accessKeyId ?? "",
    secretAccessKey: secretAccessKey ?? "",
    sessionToken: first(env, "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"),
    userId: env.EC2_USER_ID || undefined,
    certPath: env.EC2_CERT || undefined,
    privateKeyPath: env.EC2_PRIVATE_KEY || undefined,
    cloudCertPath: env.EUCALYPTUS_CERT || undefined,
    tls: tlsFromEnvironment(EUCARC_CLOUD, env),
  });
}

/** The AWSAccessKeyId / AWSSecretKey lines of an AWS credential file (`#` starts a comment), as euca2ools reads it. */
function readCredentialFile(path: string): { accessKeyId?: string; secretAccessKey?: string } {
  let text: string;
  try {
    if (statSync(path).size > MAX_CREDENTIAL_FILE_BYTES)
      throw new Error(`larger than ${MAX_CREDENTIAL_FILE_BYTES} bytes`);
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new ChromogenicError(`AWS_CREDENTIAL_FILE ${path} cannot be read: ${(e as Error).message}`, "ECONFIG");
  }
  const out: { accessKeyId?: string; secretAccessKey?: string } = {};
  for (const line of text.split("\n")) {
    const m = /^([^=]*)=(.*)$/.exec(line.split("#", 1)[0]!);
    if (!m) continue;
    if (m[1]!.trim() === "AWSAccessKeyId") out.accessKeyId ??= m[2]!.trim();
    if (m[1]!.trim() === "AWSSecretKey") out.secretAccessKey ??= m[2]!.trim();
  }
  return out;
}
