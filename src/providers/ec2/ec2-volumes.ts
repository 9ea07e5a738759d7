/**
 * DescribeVolumes, for the one thing imaging needs of an instance's volumes: their sizes, which bound how long
 * CreateImage's snapshots may take (ec2-wait-bounds.ts). Volumes the server does not list count as nothing,
 * so an answer missing a volume shortens the wait rather than failing the job.
 */
import { DescribeVolumesCommand, type DescribeVolumesCommandOutput } from "@aws-sdk/client-ec2";
import type { Ec2Connection } from "./ec2-connection.js";

/** The total size in GiB of the volumes named (at most 500, the most one call may name). */
export async function volumesSizeGiB(
  ec2: Ec2Connection,
  volumeIds: readonly string[],
  signal?: AbortSignal,
): Promise<number> {
  if (volumeIds.length === 0) return 0;
  const out = await ec2.send<DescribeVolumesCommandOutput>(
    new DescribeVolumesCommand({ VolumeIds: volumeIds.slice(0, 500) }),
    { call: "DescribeVolumes", subject: volumeIds.join(", ") },
    signal,
  );
  return (out.Volumes ?? []).reduce((sum, v) => sum + (Number.isSafeInteger(v.Size) && v.Size! > 0 ? v.Size! : 0), 0);
}
