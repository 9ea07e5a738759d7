/**
 * The cloud flags' defaults, as the openstack CLI has them: --cloud, --from and --to fall back to --os-cloud,
 * then to OS_CLOUD; with none of them, one line says which flag is missing (exit 2).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { makeSampleImage } from "../../src/workflows/sample-image.js";
import { runCli, scratch } from "../helpers/tools.js";
import { jsonLines } from "../workflows/helpers/workflow-stack.js";

test("--cloud, --from and --to default to --os-cloud, then OS_CLOUD", async (t) => {
  const dir = await scratch(t);
  const base: NodeJS.ProcessEnv = {
    ...process.env,
    CHROMOGENIC_STATE_DIR: join(dir, "state"),
    OS_CLIENT_CONFIG_FILE: join(dir, "no.yaml"),
  };
  delete base.OS_CLOUD;
  const store1 = `local:${dir}/s1`;
  const sample = join(dir, "sample.raw");
  await makeSampleImage(sample, 4 * 2 ** 20);
  const up = await runCli(["image", "upload", sample, "first"], { ...base, OS_CLOUD: store1 });
  assert.equal(up.code, 0, up.stderr);
  const listed = await runCli(["image", "list", "--json", "--os-cloud", store1], base);
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, /"name":"first"/);
  // --from from OS_CLOUD, --to given.
  const m = await runCli(["migrate", "--to", `local:${dir}/s2`, "--image", "first", "--json"], {
    ...base,
    OS_CLOUD: store1,
  });
  assert.equal(m.code, 0, m.stderr);
  assert.equal((jsonLines(m.stdout).at(-1) as { image: { name: string } }).image.name, "first");
  const none = await runCli(["image", "list"], base);
  assert.equal(none.code, 2);
  assert.equal(none.stderr.trim(), "chromogenic: --cloud is required (or --os-cloud NAME, or OS_CLOUD)");
});
