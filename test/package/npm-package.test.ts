/**
 * What `npm pack` ships: what a user needs and nothing that points nowhere — the docs the README links to,
 * source maps that carry their sources (src/*.ts is not shipped), no tests or benchmarks — and, run by a Node.js
 * too old, a message that fits a package installed with npm rather than a git checkout.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { run, runOk, scratch } from "../helpers/tools.js";

const exec = promisify(execFile);

test("the npm package holds the README's links and self-contained source maps, no tests", async (t) => {
  const { stdout } = await exec("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], {
    maxBuffer: 64 * 2 ** 20,
  });
  const files = new Set((JSON.parse(stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path));
  for (const needed of ["bin/chromogenic.js", "dist/cli/main.js", "dist/src/index.js", "dist/src/index.d.ts"]) {
    assert.ok(files.has(needed), `${needed} is not in the package`);
  }
  const readme = await readFile("README.md", "utf8");
  const links = [...readme.matchAll(/\]\((?!https?:|#)([^)#\s]+)/g)].map((m) => m[1]!);
  assert.ok(links.length > 3);
  for (const link of links) assert.ok(files.has(link), `README links ${link}, which the package lacks`);
  assert.deepEqual(
    [...files].filter((f) => /^(test|bench|dist\/test|dist\/bench|src)\//.test(f)),
    [],
  );
  const maps = [...files].filter((f) => f.endsWith(".js.map"));
  assert.ok(maps.length > 10);
  for (const map of maps.slice(0, 20)) {
    const parsed = JSON.parse(await readFile(map, "utf8")) as { sources: string[]; sourcesContent?: string[] };
    assert.equal(parsed.sourcesContent?.length, parsed.sources.length, `${map} names sources it does not carry`);
  }

  // An older Node.js running the installed package: the message names no script the package does not hold.
  const dir = await scratch(t);
  const tgz = (await runOk("npm", ["pack", "--ignore-scripts", "--pack-destination", dir])).trim().split("\n").at(-1)!;
  await runOk("tar", ["-xzf", join(dir, tgz), "-C", dir]);
  const old = await run("/usr/bin/node", [join(dir, "package", "bin", "chromogenic.js"), "formats"]);
  const version = (await runOk("/usr/bin/node", ["--version"])).trim();
  assert.ok(Number(version.slice(1).split(".")[0]) < 22, `/usr/bin/node is ${version}: this test needs an older one`);
  assert.equal(old.code, 1);
  assert.match(old.stderr, /Node\.js v\d+\.\d+\.\d+ is too old, 22\.3 or newer is needed: install one/);
  assert.doesNotMatch(old.stderr, /setup\.sh/);
});
