/**
 * One timed phase of ebs-bench.ts in a process of its own, so that its peak RSS is that phase's alone, as a
 * command doing only that would have it: `read` converts the snapshot into qcow2 through GetSnapshotBlock,
 * `write` writes the raw disk back as a new snapshot with PutSnapshotBlock. Forked with an IPC channel; sends
 * its figures as one message and exits.
 */
import { open } from "node:fs/promises";
import { convertFile } from "../src/formats/engine/convert.js";
import { EbsConnection } from "../src/providers/aws/ebs-connection.js";
import { DEFAULT_SNAPSHOT_CONCURRENCY, openSnapshotInput } from "../src/providers/aws/ebs-snapshot-input.js";
import { DEFAULT_WRITE_CONCURRENCY, writeSnapshot } from "../src/providers/aws/ebs-snapshot-writer.js";

const MiB = 2 ** 20;

export interface BenchPhaseRequest {
  readonly phase: "read" | "write";
  readonly url: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly snapshotId: string;
  /** The raw disk (write) or the qcow2 to make (read). */
  readonly path: string;
}

export interface BenchPhaseResult {
  readonly seconds: number;
  /** Our requests in flight, sampled every 20 ms: most and mean, and the concurrency asked for. */
  readonly maxInFlight: number;
  readonly meanInFlight: number;
  readonly concurrency: number;
  readonly cpuSeconds: number;
  readonly peakRssMiB: number;
  /** The snapshot written (write). */
  readonly snapshotId?: string;
  readonly retries: number;
}

/** The raw disk in 4 MiB chunks read into one reused buffer (the writer keeps no chunk it was given). */
async function* rawChunks(path: string): AsyncGenerator<Buffer> {
  const file = await open(path, "r");
  const buffer = Buffer.allocUnsafe(4 * MiB);
  try {
    for (;;) {
      const { bytesRead } = await file.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) return;
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    await file.close();
  }
}

async function run(request: BenchPhaseRequest): Promise<BenchPhaseResult> {
  const ebs = new EbsConnection({
    cloud: "bench",
    region: request.region,
    endpoint: request.url,
    credentials: { accessKeyId: request.accessKeyId, secretAccessKey: request.secretAccessKey },
  });
  let max = 0;
  let sum = 0;
  let n = 0;
  const timer = setInterval(() => {
    max = Math.max(max, ebs.stats.inFlight);
    sum += ebs.stats.inFlight;
    n++;
  }, 20);
  const started = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  let snapshotId: string | undefined;
  try {
    if (request.phase === "read") {
      const input = await openSnapshotInput(ebs, request.snapshotId);
      await convertFile({ input, inputFormat: "raw", output: request.path, outputFormat: "qcow2" });
    } else {
      snapshotId = (await writeSnapshot(ebs, rawChunks(request.path), { volumeSizeGiB: 4, description: "ebs-bench" }))
        .snapshotId;
    }
  } finally {
    clearInterval(timer);
    ebs.destroy();
  }
  const used = process.cpuUsage(cpu);
  return {
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
    maxInFlight: max,
    meanInFlight: n ? sum / n : 0,
    concurrency: request.phase === "read" ? DEFAULT_SNAPSHOT_CONCURRENCY : DEFAULT_WRITE_CONCURRENCY,
    cpuSeconds: (used.user + used.system) / 1e6,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    retries: ebs.stats.retries,
    ...(snapshotId ? { snapshotId } : {}),
  };
}

process.once("message", (request: BenchPhaseRequest) => {
  run(request).then(
    (result) => process.send!(result, () => process.exit(0)),
    (e: unknown) => {
      process.stderr.write(`ebs-bench-client: ${(e as Error).stack ?? String(e)}\n`);
      process.exit(1);
    },
  );
});
