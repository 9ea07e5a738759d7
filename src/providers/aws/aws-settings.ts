/**
 * What an AWS store needs beyond its credentials and endpoints, from the environment (the CLI's --no-reboot,
 * --aws-concurrency, --aws-read-via, --aws-write-via, --aws-bucket and --aws-vm-import-role set these
 * variables, which carry them to a job's worker and into a resume, as the other stores' options travel):
 *
 *   CHROMOGENIC_AWS_NO_REBOOT     "1": CreateImage snapshots a running instance without stopping it (faster, no
 *                                 downtime; the filesystem may then be caught mid-write, as AWS warns)
 *   CHROMOGENIC_AWS_CONCURRENCY   EBS direct API requests in flight per transfer (default the reader's and
 *                                 writer's own; AWS allows far more per snapshot than one host can feed)
 *   CHROMOGENIC_AWS_READ_VIA      how an AMI's disk is read: "ebs-direct" (default: its snapshot's blocks) or
 *                                 "export" (ExportImage writes it to S3 as RAW, read there with ranged GETs)
 *   CHROMOGENIC_AWS_WRITE_VIA     how an AMI is made: "ebs-direct" (default: a snapshot written block by block,
 *                                 then RegisterImage) or "import" (the disk uploaded to S3, then ImportImage)
 *   CHROMOGENIC_AWS_BUCKET        the S3 bucket (in the cloud's region) export and import go through; created
 *                                 if missing. Its own variable rather than CHROMOGENIC_BUNDLE_BUCKET: a
 *                                 migration between Eucalyptus and AWS needs a bucket in each, and AWS bucket
 *                                 names are global, so one name rarely fits both
 *   CHROMOGENIC_AWS_VM_IMPORT_ROLE
 *                                 the IAM role VM Import/Export reads and writes that bucket as (default vmimport)
 *   CHROMOGENIC_AWS_TASK_POLL_SECONDS
 *                                 seconds between two looks at an export or import task (default 5)
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

export type AwsReadVia = "ebs-direct" | "export";
export type AwsWriteVia = "ebs-direct" | "import";

export interface AwsSettings {
  readonly noReboot: boolean;
  readonly concurrency?: number;
  readonly readVia: AwsReadVia;
  readonly writeVia: AwsWriteVia;
  readonly bucket?: string;
  readonly vmImportRole: string;
  readonly taskPollMs: number;
  /** The key (and certificate) instance-store AMIs were bundled with; absent: such AMIs cannot be read. */
  readonly bundleKey?: { readonly privateKeyPath: string; readonly certPath?: string };
}

/** The most requests in flight one transfer may ask for: memory is one 512 KiB block per request. */
export const MAX_AWS_CONCURRENCY = 64;

/** VM Import/Export's service role as AWS's guide names it. */
export const DEFAULT_VM_IMPORT_ROLE = "vmimport";

export function awsSettings(env: Env): AwsSettings {
  const raw = env.CHROMOGENIC_AWS_CONCURRENCY;
  const concurrency = raw === undefined || raw === "" ? undefined : Number(raw);
  if (
    concurrency !== undefined &&
    !(Number.isInteger(concurrency) && concurrency >= 1 && concurrency <= MAX_AWS_CONCURRENCY)
  ) {
    throw new UsageError(`--aws-concurrency "${raw}" is not a whole number from 1 to ${MAX_AWS_CONCURRENCY}`);
  }
  const poll = env.CHROMOGENIC_AWS_TASK_POLL_SECONDS;
  const pollSeconds = poll === undefined || poll === "" ? 5 : Number(poll);
  if (!(Number.isFinite(pollSeconds) && pollSeconds >= 0.01 && pollSeconds <= 600)) {
    throw new UsageError(`CHROMOGENIC_AWS_TASK_POLL_SECONDS "${poll}" is not a number of seconds from 0.01 to 600`);
  }
  return {
    noReboot: env.CHROMOGENIC_AWS_NO_REBOOT === "1",
    ...(concurrency ? { concurrency } : {}),
    readVia: oneOf("--aws-read-via", env.CHROMOGENIC_AWS_READ_VIA, ["ebs-direct", "export"] as const),
    writeVia: oneOf("--aws-write-via", env.CHROMOGENIC_AWS_WRITE_VIA, ["ebs-direct", "import"] as const),
    ...(env.CHROMOGENIC_AWS_BUCKET ? { bucket: env.CHROMOGENIC_AWS_BUCKET } : {}),
    vmImportRole: env.CHROMOGENIC_AWS_VM_IMPORT_ROLE || DEFAULT_VM_IMPORT_ROLE,
    taskPollMs: Math.round(pollSeconds * 1000),
    ...(env.EC2_PRIVATE_KEY
      ? { bundleKey: { privateKeyPath: env.EC2_PRIVATE_KEY, ...(env.EC2_CERT ? { certPath: env.EC2_CERT } : {}) } }
      : {}),
  };
}

/** The bucket export and import go through; `why` names the choice that needs it. */
export function requireAwsBucket(settings: AwsSettings, why: string): string {
  if (settings.bucket) return settings.bucket;
  throw new UsageError(
    `${why} goes through an S3 bucket: name one in the cloud's region with --aws-bucket (or CHROMOGENIC_AWS_BUCKET); ` +
      "it is created if missing",
  );
}

/** `value` when it is one of `allowed`, the first of them when unset. */
function oneOf<T extends string>(option: string, value: string | undefined, allowed: readonly [T, ...T[]]): T {
  if (value === undefined || value === "") return allowed[0];
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new UsageError(`${option} "${value}" is not one of ${allowed.join(", ")}`);
}
