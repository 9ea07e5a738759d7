/**
 * Listing commands print what the openstack CLI prints for `-f table|json|yaml|value|csv` and `-c COLUMN`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { makeSampleImage } from "../../src/workflows/sample-image.js";
import { runCli, scratch } from "../helpers/tools.js";

test("image list, jobs and clouds take -f and -c as the openstack CLI does", async (t) => {
  const dir = await scratch(t);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CHROMOGENIC_STATE_DIR: join(dir, "state"),
    OS_CLIENT_CONFIG_FILE: join(dir, "none.yaml"),
    OS_CLOUD: `local:${dir}/s`,
  };
  const sample = join(dir, "sample.raw");
  await makeSampleImage(sample, 2 ** 20);
  const size = (await stat(sample)).size;
  for (const name of ["alpha", 'say "hi", bob']) {
    const up = await runCli(["image", "upload", sample, name], env);
    assert.equal(up.code, 0, up.stderr);
  }
  const list = async (...args: string[]) => {
    const r = await runCli(["image", "list", ...args], env);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };
  const json = JSON.parse(await list("-f", "json")) as Record<string, unknown>[];
  assert.deepEqual(Object.keys(json[0]!), ["ID", "Name", "Disk Format", "Size", "Visibility", "Status"]);
  assert.deepEqual(json.map((i) => i.Name).sort(), ["alpha", 'say "hi", bob']);
  assert.ok(json.every((i) => i.Size === size && i["Disk Format"] === "raw"));
  assert.deepEqual((await list("-f", "value", "-c", "name")).split("\n").filter(Boolean).sort(), [
    "alpha",
    'say "hi", bob',
  ]);
  assert.deepEqual(
    parseYaml(await list("-f", "yaml", "-c", "Name", "-c", "Size")),
    json.map((i) => ({ Name: i.Name, Size: i.Size })),
  );
  const csv = (await list("-f", "csv", "-c", "Name", "-c", "Size")).split("\n");
  assert.equal(csv[0], '"Name","Size"');
  assert.ok(csv.includes(`"say ""hi"", bob",${size}`), csv.join("\n"));
  const table = (await list("-f", "table", "-c", "Name")).split("\n");
  assert.match(table[0]!, /^\+-+\+$/);
  assert.match(table[1]!, /^\| Name +\|$/);
  assert.ok(table.some((l) => /^\| alpha +\|$/.test(l)));

  const badFormat = await runCli(["image", "list", "-f", "xml"], env);
  assert.equal(badFormat.code, 2);
  assert.match(badFormat.stderr, /-f xml: the formats are table, json, yaml, value, csv/);
  const badColumn = await runCli(["image", "list", "-f", "json", "-c", "Owner"], env);
  assert.equal(badColumn.code, 2);
  assert.match(badColumn.stderr, /-c Owner: the columns are ID, Name, Disk Format, Size, Visibility, Status/);

  const jobs = await runCli(["jobs", "-f", "json"], env);
  assert.equal(jobs.code, 0, jobs.stderr);
  assert.deepEqual(JSON.parse(jobs.stdout), []);
  const clouds = await runCli(["clouds", "-f", "value", "-c", "Name", "-c", "Kind"], env);
  assert.equal(clouds.code, 0, clouds.stderr);
  assert.match(clouds.stdout, /^local local$/m);
});
