import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { convertFile } from "../src/formats/engine/convert.js";
import { makeRaw, mixedRegions, qemuCheck, run, scratch } from "./helpers/tools.js";

const MiB = 2 ** 20;

interface Variant {
  readonly id: string;
  readonly format: string;
  readonly options: Record<string, string>;
  /** qemu-img's name for the format, to compare without relying on its probe (a fixed VHD probes as raw). */
  readonly qemu: string;
  /** qemu-img check supports it. */
  readonly checkable: boolean;
}

const VARIANTS: readonly Variant[] = [
  { id: "raw", format: "raw", options: {}, qemu: "raw", checkable: false },
  { id: "qcow2", format: "qcow2", options: {}, qemu: "qcow2", checkable: true },
  { id: "qcow2-zstd", format: "qcow2", options: { compression_type: "zstd" }, qemu: "qcow2", checkable: true },
  { id: "vmdk-sparse", format: "vmdk", options: { subformat: "monolithicSparse" }, qemu: "vmdk", checkable: true },
  { id: "vmdk-stream", format: "vmdk", options: { subformat: "streamOptimized" }, qemu: "vmdk", checkable: true },
  { id: "vhd-dynamic", format: "vhd", options: { subformat: "dynamic" }, qemu: "vpc", checkable: false },
  { id: "vhd-fixed", format: "vhd", options: { subformat: "fixed" }, qemu: "vpc", checkable: false },
  { id: "vdi", format: "vdi", options: {}, qemu: "vdi", checkable: true },
  { id: "vdi-static", format: "vdi", options: { static: "on" }, qemu: "vdi", checkable: true },
];

test("round trips through every pair of writable formats keep the disk identical", async (t) => {
  const dir = await scratch(t);
  const original = join(dir, "original.raw");
  // Odd-sized (not a multiple of any cluster, grain or block size, but of the sector) with data, holes,
  // zeros written as data and a last byte.
  const size = 9 * MiB + 7 * 512;
  await makeRaw(original, size, mixedRegions(size));
  const firstHop = new Map<string, string>();
  for (const a of VARIANTS) {
    const path = join(dir, `hop1-${a.id}`);
    await convertFile({ input: original, output: path, outputFormat: a.format, createOptions: a.options });
    firstHop.set(a.id, path);
  }
  // VHDX is read-only here: qemu-img writes the first hop.
  const vhdx = join(dir, "hop1-vhdx");
  await run("qemu-img", ["convert", "-f", "raw", "-O", "vhdx", original, vhdx]);
  firstHop.set("vhdx", vhdx);
  const sources = [...VARIANTS.map((v) => v.id), "vhdx"];
  const failures: string[] = [];
  for (const a of sources) {
    for (const b of VARIANTS) {
      const out = join(dir, `hop2-${a}-${b.id}`);
      await convertFile({ input: firstHop.get(a)!, output: out, outputFormat: b.format, createOptions: b.options });
      const cmp = await run("qemu-img", ["compare", "-f", "raw", "-F", b.qemu, original, out]);
      if (cmp.code !== 0) failures.push(`${a} → ${b.id}: ${cmp.stdout.trim()} ${cmp.stderr.trim()}`);
      if (b.checkable) {
        const check = await qemuCheck(out);
        if (check.code !== 0) failures.push(`${a} → ${b.id}: qemu-img check exit ${check.code}`);
      }
    }
  }
  assert.deepEqual(failures, []);
});
