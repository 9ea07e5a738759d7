/**
 * The event schema has one source (src/util/events.ts): docs/events.schema.json is generated from it and must
 * not drift, and the schema refuses what the old, split shapes sent (convert's bytesDone/bytesTotal).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { packageRoot } from "../../src/util/package-files.js";
import { EventSchema, eventJsonSchema } from "../../src/util/events.js";

test("docs/events.schema.json is the JSON Schema generated from the events' definition", async () => {
  const documented = JSON.parse(await readFile(join(packageRoot(), "docs", "events.schema.json"), "utf8")) as unknown;
  assert.deepEqual(
    documented,
    eventJsonSchema(),
    "docs/events.schema.json is stale: run `npm run build && node scripts/write-event-schema.mjs`",
  );
  const schema = documented as { $schema: string; oneOf: { properties: { event: { const: string } } }[] };
  assert.equal(schema.$schema, "https://json-schema.org/draft/2020-12/schema");
  assert.deepEqual(
    schema.oneOf.map((s) => s.properties.event.const),
    ["progress", "phase", "step", "message", "job", "done", "error"],
  );
});

test("the schema takes each kind of event and refuses the shapes it replaced", () => {
  const valid = [
    { event: "progress", phase: "convert", bytes: 0, total: null, rate: 0, elapsed: 0, eta: null },
    { event: "progress", job: "j", phase: "upload", bytes: 5, total: 10, rate: 1, elapsed: 5, eta: 5 },
    { event: "phase", phase: "clean", state: "start", detail: "defaults" },
    { event: "step", phase: "clean", name: "logfiles", index: 1, count: 12 },
    { event: "message", level: "warning", text: "x" },
    { event: "job", job: "export-1" },
    { event: "done", command: "info", format: "raw" },
    { event: "error", code: "ECORRUPT", message: "x: bad", exitCode: 1 },
  ];
  for (const e of valid) assert.ok(EventSchema.safeParse(e).success, JSON.stringify(e));
  const invalid = [
    // convert's old shape
    { event: "progress", phase: "convert", bytesDone: 1, bytesTotal: 2, elapsed: 0, rate: 0, eta: null },
    { event: "progress", phase: "nowhere", bytes: 0, total: null, rate: 0, elapsed: 0, eta: null },
    { event: "done" },
    { event: "done", command: "frobnicate" },
    { event: "error", code: "corrupt", message: "x", exitCode: 1 },
    { event: "error", code: "ECORRUPT", message: "x" },
    { event: "message", level: "debug", text: "x" },
    { event: "finished" },
  ];
  for (const e of invalid) assert.ok(!EventSchema.safeParse(e).success, JSON.stringify(e));
});
