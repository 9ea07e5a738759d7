/**
 * OpenStack's ec2-api on the test stack (`bash test/infra/openstack/aio.sh start ec2`, see
 * test/infra/openstack/README.md) and the Swift S3 behind Keystone it reads bundles from
 * (`test/infra/swift/start.sh start --keystone URL`). The stage writes the EC2 user's credentials and endpoints
 * to $OSP/ec2-credentials.json; the suites fail, never skip, when it or a server is missing.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { EC2Client } from "@aws-sdk/client-ec2";
import { z } from "zod";
import { loadCloudConfig, type CloudConfig } from "../../src/providers/openstack/cloud-config.js";
import { S3Connection } from "../../src/providers/ec2/s3-connection.js";
import { AUTH_URL, requireStack } from "./openstack-stack.js";

export const EC2_CREDENTIALS_FILE = join(process.env.OSP ?? "/var/tmp/openstack-aio", "ec2-credentials.json");

const Ec2ApiStackSchema = z.object({
  ec2Url: z.string().url(),
  s3Url: z.string().url(),
  s3Region: z.string(),
  accessKeyId: z.string().min(1),
  secretAccessKey: z.string().min(1),
  projectId: z.string().min(1),
  user: z.string(),
  password: z.string(),
  project: z.string(),
  /** The certificate bundles for this cloud are encrypted to. */
  cloudCert: z.string(),
  /** A stopped server in the EC2 user's project that boots from a Cinder volume. */
  volumeBackedServer: z.string(),
});

export type Ec2ApiStack = z.infer<typeof Ec2ApiStackSchema>;

const START = "start it with `bash test/infra/openstack/aio.sh start ec2` (as root, on a running `start all`)";

/** The stage's credentials, once ec2-api and the Keystone S3 both answer; otherwise an error saying what is missing. */
export async function requireEc2Api(): Promise<Ec2ApiStack> {
  await requireStack();
  let text: string;
  try {
    text = await readFile(EC2_CREDENTIALS_FILE, "utf8");
  } catch (e) {
    throw new Error(`ec2-api's credentials ${EC2_CREDENTIALS_FILE} are missing (${(e as Error).message}): ${START}`);
  }
  const stack = Ec2ApiStackSchema.parse(JSON.parse(text));
  await answers(stack.ec2Url, `ec2-api does not answer at ${stack.ec2Url}`, START);
  await answers(
    new URL("healthcheck", stack.s3Url).href,
    `Swift's Keystone S3 proxy does not answer at ${stack.s3Url}`,
    "start it with `bash test/infra/swift/start.sh start --keystone http://127.0.0.1:5000` (as root)",
  );
  return stack;
}

async function answers(url: string, what: string, fix: string): Promise<void> {
  try {
    const r = await fetch(url);
    await r.body?.cancel();
  } catch (e) {
    throw new Error(`${what} (${(e as Error).message}): ${fix}`);
  }
}

/** An EC2 client as the stage's user. One attempt per call: a retried CreateImage would image twice. */
export function ec2Client(stack: Ec2ApiStack): EC2Client {
  return new EC2Client({
    endpoint: stack.ec2Url,
    // ec2-api accepts any SigV4 region; Keystone checks the signature with the one the request names.
    region: "RegionOne",
    credentials: { accessKeyId: stack.accessKeyId, secretAccessKey: stack.secretAccessKey },
    maxAttempts: 1,
  });
}

/** The Keystone S3 (Swift) as the stage's user: the same EC2 credential signs for both. */
export function s3Connection(stack: Ec2ApiStack): S3Connection {
  return new S3Connection({
    cloud: "ec2-api test stack",
    endpoint: stack.s3Url,
    region: stack.s3Region,
    accessKeyId: stack.accessKeyId,
    secretAccessKey: stack.secretAccessKey,
  });
}

/** The EC2 user as an OpenStack cloud (its password), to look at the same project through Glance and Nova. */
export function ec2UserCloud(stack: Ec2ApiStack): CloudConfig {
  return loadCloudConfig({
    env: {
      OS_AUTH_URL: AUTH_URL,
      OS_USERNAME: stack.user,
      OS_PASSWORD: stack.password,
      OS_PROJECT_NAME: stack.project,
      OS_USER_DOMAIN_NAME: "Default",
      OS_PROJECT_DOMAIN_NAME: "Default",
      OS_REGION_NAME: "RegionOne",
      OS_INTERFACE: "public",
    },
    searchDirs: [],
  });
}

/**
 * The environment of a euca2ools user of the stack's EC2 (the eucarc variables: `--cloud env-euca`), chromogenic's
 * state in `stateDir`; with the user's key and certificate when bundles are signed or read.
 */
export function eucarcEnv(
  stack: Ec2ApiStack,
  stateDir: string,
  user?: { readonly userKey: string; readonly userCert: string },
): NodeJS.ProcessEnv {
  return {
    ...process.env,
    CHROMOGENIC_STATE_DIR: stateDir,
    EC2_URL: stack.ec2Url,
    S3_URL: stack.s3Url,
    EC2_ACCESS_KEY: stack.accessKeyId,
    EC2_SECRET_KEY: stack.secretAccessKey,
    EC2_USER_ID: stack.projectId,
    EUCALYPTUS_CERT: stack.cloudCert,
    // Swift's s3api checks the signing region; ec2-api takes any.
    AWS_AUTH_REGION: stack.s3Region,
    ...(user ? { EC2_CERT: user.userCert, EC2_PRIVATE_KEY: user.userKey } : {}),
  };
}
