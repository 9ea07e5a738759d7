/**
 * The EBS direct APIs test server for ebs-bench.ts, in a process of its own so that the bench's RSS and CPU
 * figures are the client's alone: it holds the bench disk as a snapshot (its non-zero blocks, about 0.9 GiB,
 * in memory here) and the snapshot written back.
 *
 * Forked with an IPC channel. It sends { url, region, accessKeyId, secretAccessKey, snapshotId, blocks } once
 * ready, then answers { stats } with the server's counters and { verify: snapshotId } with whether that
 * snapshot holds the same blocks as the first.
 */
import { EbsDirectServer } from "../test/helpers/aws/ebs-direct-server.js";
import { FakeAwsAccount } from "../test/helpers/aws/fake-aws-account.js";

interface Request {
  readonly stats?: boolean;
  readonly resetStats?: boolean;
  readonly verify?: string;
}

async function main(): Promise<void> {
  const raw = process.argv[2];
  if (!raw || !process.send) throw new Error("usage: forked by ebs-bench.js with the raw disk's path");
  const account = new FakeAwsAccount();
  const key = account.addCredential();
  const source = account.addSnapshotOfFile(raw);
  const server = await EbsDirectServer.start(account);
  let cpu = process.cpuUsage();
  process.on("message", (message: Request) => {
    if (message.resetStats) {
      Object.assign(server.stats, {
        calls: {},
        throttled: 0,
        maxInFlight: 0,
        inFlightSum: 0,
        requests: 0,
        connections: 0,
      });
      cpu = process.cpuUsage();
    }
    const used = process.cpuUsage(cpu);
    if (message.stats) process.send!({ stats: { ...server.stats, cpu: (used.user + used.system) / 1e6 } });
    if (message.verify) {
      const written = account.snapshots.get(message.verify);
      const same =
        !!written &&
        written.status === "completed" &&
        written.blocks.size === source.blocks.size &&
        [...source.blocks].every(([index, data]) => written.blocks.get(index)?.equals(data));
      process.send!({ verified: same, blocks: written?.blocks.size ?? 0 });
    }
  });
  process.on("disconnect", () => void server.close().then(() => process.exit(0)));
  process.send({
    url: server.url,
    region: account.region,
    accessKeyId: key.accessKeyId,
    secretAccessKey: key.secretAccessKey,
    snapshotId: source.id,
    blocks: source.blocks.size,
  });
}

main().catch((e: unknown) => {
  process.stderr.write(`ebs-bench-server: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
