/**
 * The CLI's heap headroom (src/cli/heap-headroom.ts): the growing factor it asks V8 for, and V8's limits during
 * a real conversion over HTTP, whose socket reads allocate Buffers by the hundred MiB while the JS heap stays
 * small — the case that made V8 run a full mark-compact every few MiB. How many collections that saves depends
 * on the image and on timing (35-38 -> 5-8 for the benchmark's zlib qcow2; docs/PERFORMANCE.md), so the test
 * holds V8's limits, which do not.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { growingPercentFor, HEAP_HEADROOM } from "../../src/cli/heap-headroom.js";
import { RangeServer, RepeatingImage } from "../helpers/range-server.js";
import { CLI, scratch } from "../helpers/tools.js";

const MiB = 2 ** 20;

test("heap headroom: the growing factor puts the next limit HEAP_HEADROOM above a small heap", () => {
  for (const live of [6 * MiB, 8 * MiB, 12 * MiB, 16 * MiB]) {
    const percent = growingPercentFor(live);
    assert.ok(
      Math.abs((live * percent) / 100 - HEAP_HEADROOM) < 0.01 * HEAP_HEADROOM,
      `${live / MiB} MiB: ${percent} %`,
    );
  }
  assert.equal(growingPercentFor(MiB), 1000, "capped for a nearly empty heap");
  assert.equal(growingPercentFor(0), 1000);
  assert.equal(growingPercentFor(40 * MiB), 0, "a larger heap gets V8's own factor back");
  assert.equal(growingPercentFor(2 ** 31), 0);
});

interface FullGc {
  /** The JS heap left alive. */
  readonly live: number;
  /** The old generation's limit V8 set for the next one. */
  readonly limit: number;
}

/** Runs a conversion under --trace-gc-nvp (a line of name=value pairs per collection); returns its full ones. */
function convertTracingGcs(url: string, output: string, headroom: "on" | "off") {
  return new Promise<{ code: number | null; fullGcs: FullGc[]; stderr: string }>((resolve, reject) => {
    const args = ["--trace-gc-nvp", CLI, "convert", "-q", "--no-sync", "-O", "raw", url, output];
    const child = spawn(process.execPath, args, { env: { ...process.env, CHROMOGENIC_HEAP_HEADROOM: headroom } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      const field = (line: string, name: string) => Number(new RegExp(` ${name}=(\\d+)`).exec(line)?.[1]);
      const fullGcs = stdout
        .split("\n")
        .filter((line) => line.includes(" gc=mc "))
        .map((line) => ({ live: field(line, "end_object_size"), limit: field(line, "old_gen_allocation_limit") }));
      resolve({ code, fullGcs, stderr });
    });
  });
}

async function holdsImage(path: string, image: RepeatingImage): Promise<boolean> {
  const file = await open(path);
  try {
    const buf = Buffer.alloc(16 * MiB);
    for (let at = 0; at < image.size; at += buf.length) {
      const { bytesRead } = await file.read(buf, 0, Math.min(buf.length, image.size - at), at);
      if (bytesRead === 0 || !image.holdsAt(at, buf.subarray(0, bytesRead))) return false;
    }
    return (await file.stat()).size === image.size;
  } finally {
    await file.close();
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

test("heap headroom: during a conversion over HTTP, V8 keeps HEAP_HEADROOM above the live heap", async (t) => {
  // 256 MiB over HTTP: 512 MiB of socket Buffers, which bring 8-12 full collections with or without the headroom
  // (this image has no compressed data to make fewer of them); V8's limits after each are what is compared.
  const image = new RepeatingImage(256 * MiB);
  const server = await RangeServer.start(t, image);
  const dir = await scratch(t);
  const slack: Record<string, number[]> = {};
  for (const headroom of ["off", "on"] as const) {
    const output = join(dir, `${headroom}.raw`);
    const r = await convertTracingGcs(server.url(), output, headroom);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(await holdsImage(output, image), `${headroom}: the output holds the image`);
    assert.ok(r.fullGcs.length >= 4, `${headroom}: only ${r.fullGcs.length} full collections to judge by`);
    assert.ok(
      r.fullGcs.every((g) => g.live > 0 && g.limit > 0),
      "--trace-gc-nvp gave each one's sizes",
    );
    slack[headroom] = r.fullGcs.map((g) => Math.round((g.limit - g.live) / MiB));
  }
  t.diagnostic(`MiB between the live heap and V8's next limit, per full collection: ${JSON.stringify(slack)}`);
  // The first collections run at V8's initial limits; the headroom is set after each one and holds from then on.
  const later = (s: number[]) => median(s.slice(Math.floor(s.length / 2)));
  assert.ok(later(slack.on!) * MiB >= 0.8 * HEAP_HEADROOM, `with the headroom: ${later(slack.on!)} MiB`);
  assert.ok(later(slack.on!) > later(slack.off!), `without it: ${later(slack.off!)} MiB, with it ${later(slack.on!)}`);
});
