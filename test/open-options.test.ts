import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { convertFile } from "../src/formats/engine/convert.js";
import { openImage } from "../src/formats/engine/open-image.js";
import { listDrivers } from "../src/formats/registry.js";
import { UsageError } from "../src/formats/errors.js";
import { makeRaw, runOk, scratch } from "./helpers/tools.js";

test("every driver refuses an --input-option it does not know, before reading the image", async (t) => {
  const dir = await scratch(t);
  const raw = join(dir, "disk.raw");
  await makeRaw(raw, 2 ** 20, [{ offset: 4096, data: Buffer.alloc(4096, 7) }]);
  const images = new Map<string, string>([["raw", raw]]);
  for (const d of listDrivers()) {
    if (!d.create || d.name === "raw") continue;
    const path = join(dir, `disk.${d.name}`);
    await convertFile({ input: raw, output: path, outputFormat: d.name });
    images.set(d.name, path);
  }
  await runOk("qemu-img", ["convert", "-f", "raw", "-O", "vhdx", raw, join(dir, "disk.vhdx")]);
  images.set("vhdx", join(dir, "disk.vhdx"));
  assert.deepEqual(
    [...images.keys()].sort(),
    listDrivers()
      .map((d) => d.name)
      .sort(),
  );
  for (const [format, path] of images) {
    await assert.rejects(
      openImage(path, { format, driverOptions: { no_such_option: "1" } }),
      (e: unknown) => e instanceof UsageError && /no_such_option/.test(e.message),
      format,
    );
  }
});
