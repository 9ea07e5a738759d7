/**
 * DescribeInstances, flattened from its reservations to one record per instance: what imaging an instance
 * needs to decide how (root device type "ebs" → CreateImage; "instance-store" → its disk copied or bundled),
 * and what it keeps (kernel and ramdisk ids, the image it was launched from, its state).
 */
import { DescribeInstancesCommand, type DescribeInstancesCommandOutput } from "@aws-sdk/client-ec2";
import type { Ec2Connection } from "./ec2-connection.js";
import { instanceRecord, type Ec2Instance } from "./ec2-records.js";
import { DEFAULT_MAX_PAGES, PageGuard } from "./s3-listing.js";
import { ChromogenicError } from "../../util/errors.js";

export async function describeInstances(
  ec2: Ec2Connection,
  instanceIds: readonly string[] = [],
  signal?: AbortSignal,
): Promise<Ec2Instance[]> {
  const where = `EC2 at ${ec2.endpoint}: DescribeInstances`;
  const guard = new PageGuard(where, DEFAULT_MAX_PAGES);
  const instances: Ec2Instance[] = [];
  let token: string | undefined;
  for (;;) {
    const out = await ec2.send<DescribeInstancesCommandOutput>(
      new DescribeInstancesCommand({
        ...(instanceIds.length ? { InstanceIds: [...instanceIds] } : {}),
        NextToken: token,
      }),
      { call: "DescribeInstances", subject: instanceIds.length ? instanceIds.join(", ") : undefined },
      signal,
    );
    guard.page([]);
    for (const reservation of out.Reservations ?? []) {
      instances.push(...(reservation.Instances ?? []).map((i) => instanceRecord(i, where)));
    }
    if (!out.NextToken) return instances;
    token = guard.next(out.NextToken);
  }
}

/** One instance by id; a missing one is an ENOENT error naming it. */
export async function describeInstance(
  ec2: Ec2Connection,
  instanceId: string,
  signal?: AbortSignal,
): Promise<Ec2Instance> {
  const found = (await describeInstances(ec2, [instanceId], signal)).find((i) => i.id === instanceId);
  if (!found) throw new ChromogenicError(`EC2 at ${ec2.endpoint} has no instance ${instanceId}`, "ENOENT");
  return found;
}
