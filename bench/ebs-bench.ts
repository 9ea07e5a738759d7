/**
 * EBS direct APIs benchmark: the bench's 4 GiB Debian disk read as an EBS snapshot through GetSnapshotBlock
 * into qcow2, and written back as a new snapshot with PutSnapshotBlock, against the test server written from
 * the EBS direct APIs reference (test/helpers/aws/ebs-direct-server.ts, in a child process: bench/ebs-bench-server.ts).
 *
 *   bash bench/make-test-disks.sh && npm run bench:ebs [-- --repeat 3 --keep]
 *
 * Each phase runs in a process of its own (bench/ebs-bench-client.ts), as a command doing only that would. Printed:
 * blocks sent vs the disk's allocated blocks vs the volume's blocks (sent must equal allocated, never the
 * volume), requests in flight (most and average, ours and as the server saw them: a client keeping its window
 * full is waiting for the server, not the other way round), CPU on both sides, throughput, the phase's peak RSS
 * (target: under 256 MiB) and the ratio of each to `qemu-img convert -O qcow2` of the same raw disk timed in the
 * same run.
 * Checked, untimed: the qcow2 equals the raw disk (qemu-img compare) and the written snapshot holds its blocks.
 */
import { fork, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { once } from "node:events";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { BenchPhaseRequest, BenchPhaseResult } from "./ebs-bench-client.js";
import { benchFail, machineLine, median, repeatKeepOptions, WORK } from "./bench-context.js";

const DIR = join(WORK, "ebs");
const RAW = join(WORK, "debian.raw");
const RSS_TARGET_MIB = 256;
const BLOCK = 512 * 1024;
const MiB = 2 ** 20;

function fail(message: string): never {
  return benchFail("ebs-bench", message);
}

interface Ready {
  url: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  snapshotId: string;
  blocks: number;
}

interface ServerStats {
  calls: Record<string, number>;
  /** The server process's CPU seconds since the stats were reset. */
  cpu: number;
  maxInFlight: number;
  inFlightSum: number;
  requests: number;
}

/** Asks the server process something and waits for its answer. */
async function ask<T>(child: ReturnType<typeof fork>, message: object): Promise<T> {
  const answer = once(child, "message") as Promise<[T]>;
  child.send(message);
  return (await answer)[0];
}

/** Runs one phase in a process of its own (ebs-bench-client.ts) and returns its figures. */
async function phase(request: BenchPhaseRequest): Promise<BenchPhaseResult> {
  const child = fork(fileURLToPath(new URL("./ebs-bench-client.js", import.meta.url)), [], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  let result: BenchPhaseResult | undefined;
  child.on("message", (message: BenchPhaseResult) => (result = message));
  // "close" comes after the IPC channel's last message, unlike "exit".
  const closed = once(child, "close") as Promise<[number | null]>;
  child.send(request);
  const [code] = await closed;
  return result ?? fail(`the ${request.phase} phase exited ${code} without its figures`);
}

/** Requests in flight (ours and as the server saw them), CPU on both sides, our RSS. */
function describe(result: BenchPhaseResult, server: ServerStats): string {
  return (
    `in flight (ours) max ${result.maxInFlight} mean ${result.meanInFlight.toFixed(1)} of ${result.concurrency}, ` +
    `server saw max ${server.maxInFlight}; CPU: ours ${result.cpuSeconds.toFixed(1)} s, the server's ` +
    `${server.cpu.toFixed(1)} s; ${result.retries} retries; our peak RSS ${result.peakRssMiB.toFixed(0)} MiB`
  );
}

function seconds(since: bigint): number {
  return Number(process.hrtime.bigint() - since) / 1e9;
}

async function main(): Promise<number> {
  const opts = repeatKeepOptions("ebs-bench", process.argv.slice(2));
  if (!existsSync(RAW)) fail(`${RAW} is missing: run \`bash bench/make-test-disks.sh\` first`);
  rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true });
  console.log(machineLine(opts.repeat));
  const child = fork(fileURLToPath(new URL("./ebs-bench-server.js", import.meta.url)), [RAW], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const ready = ((await once(child, "message")) as [Ready])[0];
  const connection = {
    url: ready.url,
    region: ready.region,
    accessKeyId: ready.accessKeyId,
    secretAccessKey: ready.secretAccessKey,
    snapshotId: ready.snapshotId,
  };
  const rss: number[] = [];
  const volumeBlocks = (4 * 1024 ** 3) / BLOCK;
  const qcow2 = join(DIR, "debian.qcow2");
  const reads: number[] = [];
  const writes: number[] = [];
  const baselines: number[] = [];
  let ok = true;
  try {
    for (let round = 1; round <= opts.repeat; round++) {
      // Baseline: qemu-img convert of the same raw disk, local to local.
      rmSync(qcow2, { force: true });
      const t0 = process.hrtime.bigint();
      const q = spawnSync("qemu-img", ["convert", "-O", "qcow2", RAW, join(DIR, "qemu.qcow2")], { encoding: "utf8" });
      if (q.status !== 0) fail(`qemu-img convert failed: ${q.stderr}`);
      baselines.push(seconds(t0));

      // Read: the snapshot through GetSnapshotBlock into qcow2.
      await ask(child, { resetStats: true, stats: true });
      const read = await phase({ ...connection, phase: "read", path: qcow2 });
      reads.push(read.seconds);
      const readStats = (await ask<{ stats: ServerStats }>(child, { stats: true })).stats;
      const gets = readStats.calls["GetSnapshotBlock"] ?? 0;
      const cmp = spawnSync("qemu-img", ["compare", RAW, qcow2], { encoding: "utf8" });
      if (cmp.status !== 0) {
        ok = false;
        console.log(`read: the qcow2 differs from the raw disk: ${cmp.stdout}${cmp.stderr}`);
      }
      console.log(
        `read  ${round}: ${read.seconds.toFixed(2)} s, ${((4 * 1024) / read.seconds).toFixed(0)} MiB/s of volume, ` +
          `${((gets * BLOCK) / MiB / read.seconds).toFixed(0)} MiB/s of data; GetSnapshotBlock ${gets} = listed ` +
          `${ready.blocks} of ${volumeBlocks} volume blocks; ${describe(read, readStats)}`,
      );
      if (gets !== ready.blocks) ok = false;

      // Write: the raw disk back as a new snapshot.
      await ask(child, { resetStats: true, stats: true });
      const write = await phase({ ...connection, phase: "write", path: RAW });
      writes.push(write.seconds);
      const writeStats = (await ask<{ stats: ServerStats }>(child, { stats: true })).stats;
      const puts = writeStats.calls["PutSnapshotBlock"] ?? 0;
      const verified = await ask<{ verified: boolean }>(child, { verify: write.snapshotId });
      if (!verified.verified || puts !== ready.blocks) ok = false;
      console.log(
        `write ${round}: ${write.seconds.toFixed(2)} s, ${((4 * 1024) / write.seconds).toFixed(0)} MiB/s of volume; ` +
          `PutSnapshotBlock ${puts} (allocated ${ready.blocks}, volume ${volumeBlocks}); ${describe(write, writeStats)}; ` +
          `snapshot ${verified.verified ? "holds the disk" : "DIFFERS"}`,
      );
      rss.push(read.peakRssMiB, write.peakRssMiB);
      console.log(`qemu-img convert -O qcow2 (baseline) ${round}: ${baselines.at(-1)!.toFixed(2)} s`);
    }
  } finally {
    child.disconnect();
  }
  const rssMiB = Math.max(...rss);
  const base = median(baselines);
  console.log(
    `median: read ${median(reads).toFixed(2)} s (${(median(reads) / base).toFixed(2)}× qemu-img convert's ` +
      `${base.toFixed(2)} s), write ${median(writes).toFixed(2)} s (${(median(writes) / base).toFixed(2)}×); ` +
      `peak RSS of a phase ${rssMiB.toFixed(0)} MiB (target < ${RSS_TARGET_MIB})`,
  );
  if (rssMiB >= RSS_TARGET_MIB) console.log(`missed: peak RSS ${rssMiB.toFixed(0)} MiB`);
  if (!opts.keep) rmSync(DIR, { recursive: true, force: true });
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => fail((e as Error).stack ?? String(e)),
);
