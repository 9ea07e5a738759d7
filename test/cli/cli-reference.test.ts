/**
 * The manual page and the shell completions are generated from the command definitions and must not drift;
 * the page renders without a warning, and bash completes commands, subcommands and options from it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { bashCompletion, manPage, zshCompletion } from "../../src/cli/cli-reference.js";
import { buildProgram } from "../../src/cli/main.js";
import { packageRoot } from "../../src/util/package-files.js";
import { run, runOk } from "../helpers/tools.js";

const STALE = "stale: run `npm run build && node scripts/write-cli-reference.mjs`";

test("man/chromogenic.1 and completions/ are what the command definitions give", async () => {
  const program = await buildProgram();
  const root = packageRoot();
  const { version } = JSON.parse(await readFile(join(root, "package.json"), "utf8")) as { version: string };
  assert.equal(
    await readFile(join(root, "man", "chromogenic.1"), "utf8"),
    manPage(program, version),
    `man page ${STALE}`,
  );
  assert.equal(await readFile(join(root, "completions", "chromogenic.bash"), "utf8"), bashCompletion(program), STALE);
  assert.equal(await readFile(join(root, "completions", "_chromogenic"), "utf8"), zshCompletion(program), STALE);
  for (const command of ["convert", "image list", "jobs prune", "migrate"]) {
    assert.match(manPage(program, version), new RegExp(`^\\.SS chromogenic ${command}`, "m"));
  }
});

test("the manual page renders without warnings", async () => {
  const r = await run("man", ["--warnings", "-l", join(packageRoot(), "man", "chromogenic.1")]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "");
  assert.match(r.stdout, /chromogenic convert \[input\] \[output\]/);
});

test("bash completes commands, subcommands and each command's options", async () => {
  const file = join(packageRoot(), "completions", "chromogenic.bash");
  const complete = async (...words: string[]) =>
    (
      await runOk("bash", [
        "-c",
        `source '${file}'; COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); ` +
          `COMP_CWORD=${words.length - 1}; _chromogenic; echo "\${COMPREPLY[@]}"`,
      ])
    ).trim();
  assert.equal(await complete("chromogenic", "con"), "convert");
  assert.equal(await complete("chromogenic", "convert", "--no-s"), "--no-sync");
  assert.equal(await complete("chromogenic", "image", "l"), "list");
  assert.match(await complete("chromogenic", "image", "list", "--"), /--cloud .*--os-cloud .*--format .*--column/);
  assert.equal(await complete("chromogenic", "jobs", "pr"), "prune");
});
