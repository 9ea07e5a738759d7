/**
 * What an AWS store needs beyond its credentials and endpoints, from the environment (the CLI's --no-reboot and
 * --aws-concurrency set these variables, which carry them to a job's worker and into a resume, as the other
 * stores' options travel):
 *
 *   CHROMOGENIC_AWS_NO_REBOOT     "1": CreateImage snapshots a running instance without stopping it (faster, no
 *                                 downtime; the filesystem may then be caught mid-write, as AWS warns)
 *   CHROMOGENIC_AWS_CONCURRENCY   EBS direct API requests in flight per transfer (default the reader's and
 *                                 writer's own; AWS allows far more per snapshot than one host can feed)
 *
 * and, for instance-store AMIs (S3 bundles, aws-bundle-keys.ts), the variables AWS's own EC2 tools read and
 * euca2ools and our Eucalyptus store read too, so one setting serves every EC2-family cloud:
 *
 *   EC2_PRIVATE_KEY               the PEM private key of the certificate the AMI was bundled for
 *                                 (ec2-bundle-image -k): it unwraps the bundle's AES key
 *   EC2_CERT                      that certificate (-c): the manifest's signature is checked against it
 *                                 (without it, against the private key's own public half)
 */
import { UsageError } from "../../util/errors.js";

type Env = Readonly<Record<string, string | undefined>>;

export interface AwsSettings {
  readonly noReboot: boolean;
  readonly concurrency?: number;
  /** The key (and certificate) instance-store AMIs were bundled with; absent: such AMIs cannot be read. */
  readonly bundleKey?: { readonly privateKeyPath: string; readonly certPath?: string };
}

/** The most requests in flight one transfer may ask for: memory is one 512 KiB block per request. */
export const MAX_AWS_CONCURRENCY = 64;

export function awsSettings(env: Env): AwsSettings {
  const raw = env.CHROMOGENIC_AWS_CONCURRENCY;
  const concurrency = raw === undefined || raw === "" ? undefined : Number(raw);
  if (
    concurrency !== undefined &&
    !(Number.isInteger(concurrency) && concurrency >= 1 && concurrency <= MAX_AWS_CONCURRENCY)
  ) {
    throw new UsageError(`--aws-concurrency "${raw}" is not a whole number from 1 to ${MAX_AWS_CONCURRENCY}`);
  }
  return {
    noReboot: env.CHROMOGENIC_AWS_NO_REBOOT === "1",
    ...(concurrency ? { concurrency } : {}),
    ...(env.EC2_PRIVATE_KEY
      ? { bundleKey: { privateKeyPath: env.EC2_PRIVATE_KEY, ...(env.EC2_CERT ? { certPath: env.EC2_CERT } : {}) } }
      : {}),
  };
}
