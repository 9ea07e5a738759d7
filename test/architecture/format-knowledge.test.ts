/**
 * "Nothing outside src/formats/ knows a format's layout": outside the format engine no code compares a value
 * with a format's name, and none keeps a list of format names of its own. What a caller needs to know about a
 * format it asks the registry (findDriver, isPlainDisk, a driver's own declarations); which names a cloud uses
 * it maps through findDriver. Choosing a format (`openImage(work, { format: "raw" })`) is not knowledge of one
 * and is allowed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { listDrivers } from "../../src/formats/registry.js";
import { OVA_FORMAT } from "../../src/formats/ova/ova-format.js";
import { packageRoot } from "../../src/util/package-files.js";
import { sourceFiles } from "../helpers/source-tree.js";

/** The code without its comments, line numbers kept (comments may name formats freely). */
function withoutComments(text: string): string {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, " "))
    .replace(/(^|[^:"'`\\])\/\/.*$/gm, (_m, before: string) => before);
}

/** Every place in `code` that compares with, or lists, one of `names`, as "line: text". */
export function formatKnowledge(code: string, names: readonly string[]): string[] {
  const alternatives = names.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|");
  const quoted = `["'\`](?:${alternatives})["'\`]`;
  const patterns = [
    new RegExp(`[!=]==?\\s*${quoted}`), // x === "raw"
    new RegExp(`${quoted}\\s*[!=]==?`), // "raw" === x
    new RegExp(`\\bcase\\s+${quoted}`), // case "vmdk":
    new RegExp(`\\[[^\\]]*${quoted}[^\\]]*${quoted}[^\\]]*\\]`), // ["qcow2", "raw", …]
    new RegExp(`${quoted}\\s*\\|\\s*${quoted}`), // type F = "ova" | "qcow2"
  ];
  const found: string[] = [];
  for (const [i, line] of code.split("\n").entries()) {
    if (patterns.some((p) => p.test(line))) found.push(`${i + 1}: ${line.trim()}`);
  }
  return found;
}

test("no code outside src/formats/ compares with a format's name or keeps a list of format names", async () => {
  const names = [...listDrivers().flatMap((d) => [d.name, ...(d.aliases ?? [])]), OVA_FORMAT];
  assert.ok(names.includes("qcow2") && names.includes("vpc") && names.includes("ova"));
  const src = join(packageRoot(), "src");
  const offenders: string[] = [];
  for (const file of await sourceFiles(src)) {
    const rel = relative(src, file);
    if (rel.startsWith("formats/")) continue;
    for (const hit of formatKnowledge(withoutComments(await readFile(file, "utf8")), names)) {
      offenders.push(`src/${rel}:${hit}`);
    }
  }
  assert.deepEqual(offenders, [], `format knowledge outside src/formats/:\n${offenders.join("\n")}`);
});

test("the scan itself finds comparisons and lists, and passes choices and comments", () => {
  const names = ["raw", "qcow2", "ova"];
  const hits = (code: string) => formatKnowledge(withoutComments(code), names).length;
  assert.equal(hits('if (format === "raw") x();'), 1);
  assert.equal(hits('if ("ova" !== f) x();'), 1);
  assert.equal(hits('switch (f) {\n  case "qcow2":\n}'), 1);
  assert.equal(hits('const FORMATS = ["qcow2", "raw"];'), 1);
  assert.equal(hits('type F = "ova" | "qcow2";'), 1);
  assert.equal(hits('await openImage(work, { format: "raw" });'), 0);
  assert.equal(hits('// when format === "raw" we stream\nconst a = 1;'), 0);
  assert.equal(hits('const url = "http://host/x"; // format === "raw"'), 0);
});
