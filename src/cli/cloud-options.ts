import type { Command } from "commander";
import { UsageError } from "../util/errors.js";

type CloudFlag = "cloud" | "from" | "to";

/** Connection options and the variable each one sets (OS_* for OpenStack, CHROMOGENIC_BUNDLE_* for bundles). */
const NETWORK_OPTIONS = [
  ["osCacert", "OS_CACERT"],
  ["osCert", "OS_CERT"],
  ["osKey", "OS_KEY"],
  ["insecure", "OS_INSECURE"],
  ["apiTimeout", "OS_API_TIMEOUT"],
  ["bucket", "CHROMOGENIC_BUNDLE_BUCKET"],
  ["bucketAcl", "CHROMOGENIC_BUNDLE_ACL"],
] as const;

/** AWS's transfer options and their variables (providers/aws/aws-settings.ts reads them). */
const AWS_OPTIONS = [
  ["awsConcurrency", "CHROMOGENIC_AWS_CONCURRENCY"],
  ["awsReadVia", "CHROMOGENIC_AWS_READ_VIA"],
  ["awsWriteVia", "CHROMOGENIC_AWS_WRITE_VIA"],
  ["awsBucket", "CHROMOGENIC_AWS_BUCKET"],
  ["awsVmImportRole", "CHROMOGENIC_AWS_VM_IMPORT_ROLE"],
] as const;

/**
 * Adds `--cloud` (or `--from` and `--to`) with the defaults the openstack CLI has taught its users: the cloud
 * named by `--os-cloud`, else by OS_CLOUD. One of them must name it; which flag was missing is said in one line.
 */
export function cloudOptions<T extends Command>(command: T, flags: Readonly<Partial<Record<CloudFlag, string>>>): T {
  const names = Object.keys(flags) as CloudFlag[];
  for (const name of names) command.option(`--${name} <cloud>`, `${flags[name]} (default: --os-cloud, then OS_CLOUD)`);
  command.option("--os-cloud <cloud>", "the cloud by its clouds.yaml name, as the openstack CLI takes it");
  command.option("--os-cacert <file>", "trust the CAs in this PEM file for the cloud's TLS (default: OS_CACERT)");
  command.option("--os-cert <file>", "client certificate (PEM) for clouds that ask for one (default: OS_CERT)");
  command.option("--os-key <file>", "the client certificate's key (PEM) (default: OS_KEY)");
  command.option("--insecure", "do not check the cloud's TLS certificates (a warning says so)");
  command.option(
    "--api-timeout <seconds>",
    "fail a request on which nothing moves for this long (default: api_timeout, OS_API_TIMEOUT, 300)",
  );
  command.option(
    "--bucket <bucket>",
    "Eucalyptus/EC2: the bucket new image bundles go to (default chromogenic-ACCOUNT)",
  );
  command.option(
    "--bucket-acl <acl>",
    "Eucalyptus/EC2: the canned ACL of that bucket and its bundles (Eucalyptus: aws-exec-read; default none)",
  );
  awsOptions(command);
  command.hook("preAction", (self) => {
    const given = self.opts<Record<string, string | undefined>>();
    // The openstack CLI's way: these options override clouds.yaml through the variables that are their
    // defaults, which also carry them into a job's worker and to every cloud the command names.
    optionsToVariables(given, NETWORK_OPTIONS);
    for (const name of names) {
      const cloud = given[name] ?? given.osCloud ?? process.env.OS_CLOUD;
      if (!cloud) throw new UsageError(`--${name} is required (or --os-cloud NAME, or OS_CLOUD)`);
      self.setOptionValue(name, cloud);
    }
  });
  return command;
}

/**
 * The AWS options: how many EBS direct requests run at once, and whether AMIs are read and written through the
 * EBS direct APIs or through VM Import/Export and an S3 bucket. Every command that reads or writes a cloud
 * image has them (`export --cloud` too, which takes no other cloud option).
 */
export function awsOptions<T extends Command>(command: T): T {
  command.option("--aws-concurrency <n>", "AWS: EBS direct API requests in flight per transfer, 1–64 (default 12)");
  command.option(
    "--aws-read-via <way>",
    "AWS: read an AMI with ebs-direct (its snapshot's blocks, default) or export (ExportImage to --aws-bucket)",
  );
  command.option(
    "--aws-write-via <way>",
    "AWS: make an AMI with ebs-direct (a new snapshot, default) or import (upload to --aws-bucket, ImportImage)",
  );
  command.option("--aws-bucket <bucket>", "AWS: the S3 bucket export and import go through (created if missing)");
  command.option("--aws-vm-import-role <role>", "AWS: the IAM role VM Import/Export uses that bucket as (vmimport)");
  command.hook("preAction", (self) => optionsToVariables(self.opts(), AWS_OPTIONS));
  return command;
}

/** Sets each variable whose option was given to the option's value (the options travel as the variables do). */
export function optionsToVariables(
  given: Readonly<Record<string, unknown>>,
  pairs: readonly (readonly [option: string, variable: string])[],
): void {
  for (const [flag, variable] of pairs) {
    const value = given[flag];
    if (value !== undefined) process.env[variable] = String(value);
  }
}
