/**
 * The layers' dependencies point one way (formats → guest → operations → providers → workflows → service → cli, with
 * util beneath all), and no module imports itself through a cycle: a cycle makes the order modules
 * initialise in depend on which one is loaded first, and hid the one the engine had (a driver importing the
 * registry that imports it).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { packageRoot } from "../../src/util/package-files.js";
import { sourceFiles } from "../helpers/source-tree.js";

/** Lower layers first; a module may import only from its own layer or one listed before it. */
const LAYERS = ["util", "formats", "guest", "operations", "providers", "workflows", "service", "cli"] as const;

interface ModuleImport {
  readonly target: string;
  /** Erased when compiled (`import type`, `export type`): no load-order effect, but still a dependency. */
  readonly typeOnly: boolean;
}

/** The project-relative modules `file` imports (static, re-exports, and literal dynamic imports). */
function importsOf(file: string, text: string): ModuleImport[] {
  const found: ModuleImport[] = [];
  const add = (specifier: string, typeOnly: boolean) => {
    if (!specifier.startsWith(".")) return;
    found.push({ target: resolve(dirname(file), specifier.replace(/\.js$/, ".ts")), typeOnly });
  };
  for (const m of text.matchAll(/^\s*(import|export)\s+(type\s+)?[^;]*?\bfrom\s+["']([^"']+)["']/gm)) {
    // `import { type A, type B } from` is erased too when every name is a type.
    const names = /\{([^}]*)\}/.exec(m[0])?.[1];
    const allTypes = names !== undefined && names.split(",").every((n) => n.trim() === "" || /^type\s/.test(n.trim()));
    add(m[3]!, m[2] !== undefined || (allTypes && !/^\s*(import|export)\s+\w+\s*,/.test(m[0])));
  }
  for (const m of text.matchAll(/^\s*import\s+["']([^"']+)["']/gm)) add(m[1]!, false);
  for (const m of text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)) add(m[1]!, false);
  return found;
}

async function moduleGraph(): Promise<{ src: string; graph: Map<string, ModuleImport[]> }> {
  const src = join(packageRoot(), "src");
  const graph = new Map<string, ModuleImport[]>();
  for (const file of await sourceFiles(src)) graph.set(file, importsOf(file, await readFile(file, "utf8")));
  return { src, graph };
}

/** Every cycle through runtime imports, each as the list of its modules. */
function runtimeCycles(graph: Map<string, ModuleImport[]>): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (node: string) => {
    state.set(node, "open");
    stack.push(node);
    for (const edge of graph.get(node) ?? []) {
      if (edge.typeOnly || !graph.has(edge.target)) continue;
      const s = state.get(edge.target);
      if (s === "open") cycles.push(stack.slice(stack.indexOf(edge.target)));
      else if (s === undefined) visit(edge.target);
    }
    stack.pop();
    state.set(node, "done");
  };
  for (const node of graph.keys()) if (!state.has(node)) visit(node);
  return cycles;
}

function layerOf(src: string, file: string): number {
  const top = relative(src, file).split("/")[0]!;
  return (LAYERS as readonly string[]).indexOf(top);
}

test("no import cycle among chromogenic's modules", async () => {
  const { src, graph } = await moduleGraph();
  assert.ok(graph.size > 100, "the whole tree was read");
  const cycles = runtimeCycles(graph).map((c) => c.map((f) => relative(src, f)).join(" → "));
  assert.deepEqual(cycles, [], `import cycles:\n${cycles.join("\n")}`);
});

test("dependencies point one way: no layer imports from a layer above it", async () => {
  const { src, graph } = await moduleGraph();
  const upward: string[] = [];
  for (const [file, imports] of graph) {
    const own = layerOf(src, file);
    if (own < 0) continue; // src/index.ts, the library's front door, may import from every layer
    for (const { target } of imports) {
      const theirs = layerOf(src, target);
      if (theirs > own) upward.push(`${relative(src, file)} imports ${relative(src, target)}`);
    }
  }
  assert.deepEqual(upward, [], `imports against the layers:\n${upward.join("\n")}`);
});

test("the cycle finder finds a cycle, and ignores type-only imports", () => {
  const g = new Map<string, ModuleImport[]>([
    ["a", [{ target: "b", typeOnly: false }]],
    ["b", [{ target: "c", typeOnly: false }]],
    ["c", [{ target: "a", typeOnly: false }]],
    ["d", [{ target: "e", typeOnly: true }]],
    ["e", [{ target: "d", typeOnly: false }]],
  ]);
  assert.deepEqual(runtimeCycles(g), [["a", "b", "c"]]);
  assert.deepEqual(
    importsOf(
      "/x/a.ts",
      'import type { T } from "./t.js";\nimport { type U, v } from "./v.js";\nawait import("./w.js");',
    ),
    [
      { target: "/x/t.ts", typeOnly: true },
      { target: "/x/v.ts", typeOnly: false },
      { target: "/x/w.ts", typeOnly: false },
    ],
  );
});
