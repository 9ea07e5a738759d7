/**
 * `-` names standard input for `convert` and `info`. Formats whose tables point anywhere in the file cannot be
 * read from a pipe: they are refused with the random-access message, a non-zero exit and nothing written.
 * (What can be read from a pipe is tested with its driver: test/formats/drivers/vmdk/vmdk-stream-source and
 * raw/raw-open-options.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { runCliFromStdin } from "../../helpers/cli-stdin.js";
import { makeRaw, mixedRegions, qemuImg, scratch } from "../../helpers/tools.js";

const MiB = 2 ** 20;

const RANDOM_ACCESS = [
  { format: "qcow2", qemu: ["-O", "qcow2"], refusal: "a qcow2 image" },
  { format: "vhd", qemu: ["-O", "vpc"], refusal: "a vhd image" },
  { format: "vhdx", qemu: ["-O", "vhdx"], refusal: "a vhdx image" },
  { format: "vdi", qemu: ["-O", "vdi"], refusal: "a vdi image" },
  { format: "vmdk", qemu: ["-O", "vmdk"], refusal: "a monolithicSparse VMDK image" },
];

test("images that need random access are refused from a pipe, with nothing written", async (t) => {
  const dir = await scratch(t);
  const raw = join(dir, "in.raw");
  await makeRaw(raw, 8 * MiB, mixedRegions(8 * MiB));
  const made = ["in.raw"];
  for (const { format, qemu, refusal } of RANDOM_ACCESS) {
    const image = join(dir, `in.${format}`);
    await qemuImg("convert", ...qemu, raw, image);
    made.push(`in.${format}`);
    for (const args of [
      ["convert", "-q", "-O", "raw", "-", join(dir, "out.raw")],
      ["convert", "-q", "-f", format, "-O", "qcow2", "-", join(dir, "out.qcow2")],
      ["info", "-"],
    ]) {
      const r = await runCliFromStdin(args, { path: image });
      assert.equal(r.code, 2, `${format}, ${args.join(" ")}: ${r.stderr}`);
      assert.match(
        r.stderr,
        new RegExp(`^chromogenic: -: ${refusal} needs random access, and this input can only be read once in order`),
      );
      assert.match(r.stderr, /save it to a file/);
      assert.equal(r.stdout, "");
    }
  }
  assert.deepEqual((await readdir(dir)).sort(), made.sort(), "no output or temporary file left behind");
});
