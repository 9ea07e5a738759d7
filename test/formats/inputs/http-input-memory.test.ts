/**
 * An HTTP input's memory does not grow with the image: 384 MiB, more than the 256 MiB a conversion may take in
 * all, are read through it the way the convert pipeline reads (1 MiB reads, four in flight, buffers reused) by
 * a child process, whose peak RSS (VmHWM) is then checked. The server runs in this process, so that its own
 * buffers do not count. Both kinds of server: with Range (blocks, cache, read-ahead) and without (one body
 * streamed in order).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { openHttpInput } from "../../../src/formats/inputs/http-input.js";
import { RangeServer, RepeatingImage } from "../../helpers/range-server.js";

const MiB = 2 ** 20;
const IMAGE_BYTES = 384 * MiB + 12345;
/**
 * Node takes ≈45 MiB; the cache 32 MiB. The sockets' chunks are garbage as soon as copied, but Node 24 leaves
 * ≈100 MiB of them uncollected at times: a bare http.get streaming the same bytes peaks at ≈150 MiB here.
 */
const PEAK_RSS_LIMIT_MIB = 240;

async function child(url: string): Promise<void> {
  const image = new RepeatingImage(IMAGE_BYTES);
  const input = await openHttpInput(url);
  let next = 0;
  let wrong = 0;
  const reader = async () => {
    const buf = Buffer.alloc(MiB);
    while (next < input.size) {
      const at = next;
      const length = Math.min(MiB, input.size - at);
      next += length;
      const data = await input.readExact(at, length, buf);
      if (!image.holdsAt(at, data)) wrong++;
    }
  };
  await Promise.all([reader(), reader(), reader(), reader()]);
  await input.close();
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"));
  if (!m) throw new Error("no VmHWM in /proc/self/status");
  const result = { size: input.size, sequential: input.sequential, wrong, peakMiB: Number(m[1]) / 1024 };
  process.stdout.write(JSON.stringify({ ...result, stats: input.stats }));
}

function runChild(url: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const p = spawn(process.execPath, [fileURLToPath(import.meta.url)], {
      // Without the runner's NODE_TEST_CONTEXT: the child is a plain program whose stdout is its result.
      env: { ...process.env, NODE_TEST_CONTEXT: undefined, CHROMO_HTTP_MEMORY_CHILD: url },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let stdout = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.on("error", reject);
    p.on("close", (code) => (code === 0 ? resolve(stdout) : reject(new Error(`the child exited with ${code}`))));
  });
}

if (process.env.CHROMO_HTTP_MEMORY_CHILD) {
  await child(process.env.CHROMO_HTTP_MEMORY_CHILD);
} else {
  for (const ranges of [true, false]) {
    const kind = ranges ? "with Range" : "without Range (streamed in order)";
    test(`reading a ${IMAGE_BYTES >> 20} MiB image ${kind} peaks under ${PEAK_RSS_LIMIT_MIB} MiB of RSS`, async (t) => {
      const server = await RangeServer.start(t, new RepeatingImage(IMAGE_BYTES));
      server.ranges = ranges;
      const result = JSON.parse(await runChild(server.url())) as {
        size: number;
        sequential: boolean;
        wrong: number;
        peakMiB: number;
        stats: { requests: number; bytesFetched: number };
      };
      t.diagnostic(`child peak RSS (VmHWM): ${result.peakMiB.toFixed(0)} MiB; ${JSON.stringify(result.stats)}`);
      assert.equal(result.size, IMAGE_BYTES);
      assert.equal(result.sequential, !ranges);
      assert.equal(result.wrong, 0, "every read holds the image's bytes");
      assert.equal(result.stats.bytesFetched, IMAGE_BYTES, "each byte fetched once");
      assert.equal(result.stats.requests, ranges ? Math.ceil(IMAGE_BYTES / (4 * MiB)) : 1);
      assert.ok(
        result.peakMiB < PEAK_RSS_LIMIT_MIB,
        `the reading process peaked at ${result.peakMiB.toFixed(0)} MiB (limit ${PEAK_RSS_LIMIT_MIB} MiB)`,
      );
    });
  }
}
