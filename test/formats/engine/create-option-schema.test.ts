/**
 * Every writable driver's create option schema: what validation and the listings rely on.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { getDriver, listDrivers } from "../../../src/formats/registry.js";
import { describeCreateOptions } from "../../../src/formats/engine/create-option-docs.js";
import { validateCreateOptions } from "../../../src/formats/engine/create-option-validation.js";
import type { CreateOptions, CreateOptionsSchema, FormatDriver } from "../../../src/formats/types.js";

const writable = listDrivers().filter((d) => d.create);

async function schemaOf(driver: FormatDriver): Promise<CreateOptionsSchema> {
  assert.ok(driver.createOptions, `${driver.name} can be written but has no create option schema`);
  return driver.createOptions();
}

test("every writable driver has a schema, and it turns no options into no options", async () => {
  assert.deepEqual(writable.map((d) => d.name).sort(), ["qcow2", "raw", "vdi", "vhd", "vmdk"]);
  for (const driver of writable) {
    // validateCreateOptions answers {} without loading the schema: exact only while this holds.
    assert.deepEqual((await schemaOf(driver)).parse({}), {}, driver.name);
  }
});

test("every option is documented with a description and its values, in the schema's order", async () => {
  for (const driver of writable) {
    const docs = await describeCreateOptions(driver);
    assert.deepEqual(
      docs.map((o) => o.name),
      Object.keys((await schemaOf(driver)).shape),
      driver.name,
    );
    for (const o of docs) {
      assert.ok(o.description.length > 10, `${driver.name} ${o.name}: description`);
      assert.ok(o.values, `${driver.name} ${o.name}: values`);
      assert.ok(o.default, `${driver.name} ${o.name}: default`);
    }
  }
  const qcow2 = await describeCreateOptions(getDriver("qcow2"));
  assert.deepEqual(qcow2.find((o) => o.name === "compression_type")?.values, "none|zlib|zstd");
  const vdi = await describeCreateOptions(getDriver("vdi"));
  assert.deepEqual(vdi, [
    {
      name: "static",
      description:
        "preallocate every block (VirtualBox's fixed-size image); the only variant that can be written to a pipe",
      values: "on|off",
      default: "off",
    },
  ]);
});

test("numbers and booleans mean what their text means", async () => {
  const same: [string, CreateOptions, CreateOptions][] = [
    [
      "qcow2",
      { cluster_size: "64k", compression_type: "zlib", compression_level: "9" },
      { cluster_size: 65536, compression_type: "zlib", compression_level: 9 },
    ],
    ["qcow2", { cluster_size: "2M", refcount_bits: "16" }, { cluster_size: 2 * 2 ** 20, refcount_bits: 16 }],
    ["vhd", { force_size: "off", block_size: "4K" }, { force_size: false, block_size: 4096 }],
    ["vdi", { static: "on" }, { static: true }],
    ["vdi", { static: "true" }, { static: true }],
    [
      "vmdk",
      { hwversion: "7", compat6: "off", toolsversion: "12345" },
      { hwversion: 7, compat6: false, toolsversion: 12345 },
    ],
  ];
  for (const [format, text, values] of same) {
    const load = getDriver(format).createOptions!;
    const fromText = await validateCreateOptions(format, load, text);
    assert.deepEqual(fromText, await validateCreateOptions(format, load, values), `${format} ${JSON.stringify(text)}`);
  }
  assert.deepEqual(await validateCreateOptions("vhd", getDriver("vhd").createOptions!, { block_size: "2M" }), {
    block_size: 2 * 2 ** 20,
  });
});

test("every problem is named at once, unknown keys first, with the known keys", async () => {
  await assert.rejects(
    validateCreateOptions("vhd", getDriver("vhd").createOptions!, { block_size: "3M", force_size: 2, colour: "blue" }),
    {
      name: "UsageError",
      message:
        "vhd: unknown option(s) colour (known: subformat, force_size, block_size); " +
        "force_size=2 is not on or off; block_size=3M is not a power of two from 4K to 256M",
    },
  );
  await assert.rejects(
    validateCreateOptions("qcow2", getDriver("qcow2").createOptions!, { compression_level: 3.5 }),
    /qcow2: compression_level=3.5 is not an integer from 1 to 22/,
  );
  await assert.rejects(
    validateCreateOptions("vmdk", getDriver("vmdk").createOptions!, { cid: 12345678 }),
    /vmdk: cid=12345678 is not 8 hex digits/,
  );
});
