/**
 * FormatDriver.writeAccess: what a driver declares about how it writes, before any output exists (the
 * workflows decide from it whether a conversion can stream into an upload), checked against what its writer
 * does with an output that cannot seek.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { getDriver, listDrivers } from "../../src/formats/registry.js";
import { StreamOutputFile } from "../../src/formats/io/output-file.js";
import { UsageError } from "../../src/formats/errors.js";
import type { CreateOptions, WriteAccess } from "../../src/formats/types.js";

const MiB = 2 ** 20;

const CASES: readonly [string, CreateOptions, WriteAccess][] = [
  ["raw", {}, "sequential"],
  ["qcow2", {}, "random"],
  ["qcow2", { compression_type: "zstd" }, "random"],
  ["vmdk", {}, "random"],
  ["vmdk", { subformat: "monolithicSparse" }, "random"],
  ["vmdk", { subformat: "streamOptimized" }, "sequential"],
  ["vhd", {}, "random"],
  ["vpc", { subformat: "dynamic" }, "random"],
  ["vhd", { subformat: "fixed" }, "sequential"],
  ["vdi", {}, "random"],
  ["vdi", { static: "off" }, "random"],
  ["vdi", { static: "on" }, "sequential"],
  ["vdi", { static: true }, "sequential"],
];

test("every writable driver declares how it writes", () => {
  for (const driver of listDrivers().filter((d) => d.create)) {
    assert.equal(typeof driver.writeAccess, "function", driver.name);
  }
});

for (const [format, options, access] of CASES) {
  test(`${format} ${JSON.stringify(options)} writes ${access === "random" ? "with seeks" : "strictly in order"}`, async () => {
    const driver = getDriver(format);
    assert.equal(driver.writeAccess!(options), access);
    // A stream output: a sequential writer takes it, a random one refuses it before writing anything.
    const stream = new PassThrough();
    const written: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => written.push(chunk));
    const creating = driver.create!(new StreamOutputFile(stream), MiB, options);
    if (access === "sequential") {
      const target = await creating;
      assert.equal(target.access, "sequential");
      await target.abort();
    } else {
      await assert.rejects(creating, UsageError);
      assert.equal(Buffer.concat(written).length, 0);
    }
  });
}
