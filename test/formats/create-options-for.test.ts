/**
 * The library's createOptions are typed by output format, from the drivers' schemas. This file is compiled by
 * tsc with the rest of the tests: each `@ts-expect-error` fails the build if its line stops being an error, so
 * the types cannot quietly fall back to "any options". At run time the same requests are checked by the driver.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { open, stat } from "node:fs/promises";
import { join } from "node:path";
import { convertFile } from "../../src/formats/engine/convert.js";
import { listDrivers } from "../../src/formats/registry.js";
import { vmdkDriver } from "../../src/formats/drivers/vmdk/vmdk-driver.js";
import type { CreateOptionsFor, WritableFormat } from "../../src/index.js";
import { makeRaw, mixedRegions, qemuCompare, qemuInfo, scratch } from "../helpers/tools.js";

const MiB = 2 ** 20;

test("the typed formats are exactly the registered writable formats and their aliases", () => {
  // A Record over WritableFormat must list every key and no other: the compiler checks this object.
  const writable: Record<WritableFormat, true> = {
    raw: true,
    qcow2: true,
    vdi: true,
    vhd: true,
    vpc: true,
    vmdk: true,
  };
  const registered = listDrivers()
    .filter((d) => d.create)
    .flatMap((d) => [d.name, ...(d.aliases ?? [])]);
  assert.deepEqual(Object.keys(writable).sort(), registered.sort());
  // @ts-expect-error -- vhdx is read-only
  const readOnly: WritableFormat = "vhdx";
  assert.ok(!registered.includes(readOnly));
  // What the workflows hand importers is valid VMDK options.
  const imported: CreateOptionsFor<"vmdk"> = vmdkDriver.importOptions;
  assert.equal(imported.subformat, "streamOptimized");
});

test("qemu-img's keys and values compile and work, as text or as numbers", async (t) => {
  const dir = await scratch(t);
  const input = join(dir, "in.raw");
  await makeRaw(input, 4 * MiB, mixedRegions(4 * MiB));
  const requests = [
    { cluster_size: "4k", compression_type: "zstd", compression_level: "3" },
    { cluster_size: 4096, compression_type: "zstd", compression_level: 3 },
  ] as const;
  for (const [i, createOptions] of requests.entries()) {
    const output = join(dir, `out${i}.qcow2`);
    await convertFile({ input, output, outputFormat: "qcow2", createOptions });
    const info = (await qemuInfo(output)) as { "cluster-size": number; "format-specific": { data: object } };
    assert.equal(info["cluster-size"], 4096);
    assert.equal((info["format-specific"].data as { "compression-type": string })["compression-type"], "zstd");
    assert.equal((await qemuCompare(input, output)).code, 0);
  }
  // An alias takes its format's options; switches take booleans.
  const vhd = join(dir, "out.vhd");
  await convertFile({
    input,
    output: vhd,
    outputFormat: "vpc",
    createOptions: { subformat: "fixed", force_size: true },
  });
  assert.equal((await stat(vhd)).size, 4 * MiB + 512, "a fixed VHD: the disk, then the footer");
  const vdi = join(dir, "out.vdi");
  await convertFile({ input, output: vdi, outputFormat: "vdi", createOptions: { static: true } });
  const header = Buffer.alloc(4);
  const file = await open(vdi, "r");
  await file.read(header, 0, 4, 76).finally(() => file.close());
  assert.equal(header.readUInt32LE(0), 2, "VirtualBox's image type 2: fixed (static)");
});

test("other keys and values do not compile, and are refused at run time with the known keys or values", async (t) => {
  const dir = await scratch(t);
  const input = join(dir, "in.raw");
  await makeRaw(input, MiB);
  const output = join(dir, "out");
  await assert.rejects(
    // @ts-expect-error -- qemu-img's key is cluster_size
    convertFile({ input, output, outputFormat: "qcow2", createOptions: { clusterSize: "64k" } }),
    /qcow2: unknown option\(s\) clusterSize \(known: cluster_size, compression_type, /,
  );
  await assert.rejects(
    // @ts-expect-error -- lz4 is not one of qcow2's codecs
    convertFile({ input, output, outputFormat: "qcow2", createOptions: { compression_type: "lz4" } }),
    /qcow2: compression_type=lz4 is not one of none, zlib, zstd/,
  );
  await assert.rejects(
    // @ts-expect-error -- a VMDK option given to qcow2
    convertFile({ input, output, outputFormat: "qcow2", createOptions: { subformat: "streamOptimized" } }),
    /qcow2: unknown option\(s\) subformat/,
  );
  await assert.rejects(
    // @ts-expect-error -- raw takes no options
    convertFile({ input, output, outputFormat: "raw", createOptions: { preallocation: "full" } }),
    /raw: unknown option\(s\) preallocation \(raw takes none\)/,
  );
  // A format only known at run time takes any options, checked by its driver.
  const format: string = "vmdk";
  await assert.rejects(
    convertFile({ input, output, outputFormat: format, createOptions: { subformat: "monolithicFlat" } }),
    /vmdk: subformat=monolithicFlat cannot be written \(writable: monolithicSparse, streamOptimized/,
  );
  await assert.rejects(stat(output), "nothing is written for refused options");
});
