/**
 * docs/LIBRARY.md is where a program's author starts, so its examples must be true: every ```ts block is
 * compiled as a user's project would compile it — importing "chromogenic" by name, against the types the
 * package publishes, under `strict` — and then run, in order, in one folder, as the document says they run.
 * What they made is then checked with qemu-img: an example that "runs" but converts nothing fails here.
 * The inspection and cleaning examples mount a guest, so this test needs root (CI runs as root).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { promisify } from "node:util";
import { packageRoot } from "../../src/util/package-files.js";
import { LocalProvider } from "../../src/providers/local/local-provider.js";
import { sourceFiles } from "../helpers/source-tree.js";
import { qemuCheck, qemuCompare, scratch } from "../helpers/tools.js";

const execFileP = promisify(execFile);

interface Example {
  /** 1-based line of the block's opening fence in the document. */
  readonly line: number;
  readonly code: string;
}

/** The ```ts blocks of a Markdown text, in order. */
function tsBlocks(markdown: string): Example[] {
  const blocks: Example[] = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== "```ts") continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i]!.trim() !== "```"; i++) body.push(lines[i]!);
    assert.ok(i < lines.length, `docs/LIBRARY.md:${start + 1}: a code block that never closes`);
    blocks.push({ line: start + 1, code: body.join("\n") + "\n" });
  }
  return blocks;
}

/** Runs a command in `cwd`; its output and exit code, never a throw for a non-zero exit. */
async function runIn(cwd: string, env: NodeJS.ProcessEnv, cmd: string, args: readonly string[]) {
  try {
    const { stdout, stderr } = await execFileP(cmd, args, { cwd, env, maxBuffer: 64 * 2 ** 20 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number | string; stdout?: string; stderr?: string };
    if (typeof err.code !== "number") throw e;
    return { code: err.code, stdout: err.stdout ?? "", stderr: err.stderr ?? "" };
  }
}

test("the ts blocks of a Markdown text are found in order, with their lines", () => {
  const blocks = tsBlocks(
    "# T\n\n```ts\nconst a = 1;\n```\n\n```sh\nls\n```\n\n```ts\nconst b = 2;\nconst c = 3;\n```\n",
  );
  assert.deepEqual(blocks, [
    { line: 3, code: "const a = 1;\n" },
    { line: 11, code: "const b = 2;\nconst c = 3;\n" },
  ]);
});

test("every example in docs/LIBRARY.md compiles against the package's types (strict) and runs", async (t) => {
  assert.equal(
    process.getuid?.(),
    0,
    "the inspection and cleaning examples attach loop devices and mount the guest: run this test as root",
  );
  const root = packageRoot();
  const examples = tsBlocks(await readFile(join(root, "docs", "LIBRARY.md"), "utf8"));
  assert.ok(examples.length >= 10, `docs/LIBRARY.md has ${examples.length} examples`);

  // A project of a user's that depends on chromogenic, as npm would install it.
  const dir = await scratch(t, "chromo-library-");
  await mkdir(join(dir, "node_modules"));
  await symlink(root, join(dir, "node_modules", "chromogenic"));
  await writeFile(join(dir, "package.json"), JSON.stringify({ type: "module", private: true }) + "\n");
  await writeFile(
    join(dir, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        target: "ES2023",
        lib: ["ES2023"],
        module: "NodeNext",
        moduleResolution: "NodeNext",
        strict: true,
        noUncheckedIndexedAccess: true,
        types: ["node"],
        typeRoots: [join(root, "node_modules", "@types")],
        skipLibCheck: true,
        rootDir: "examples",
        outDir: "out",
      },
      include: ["examples"],
    }),
  );
  await mkdir(join(dir, "examples"));
  const name = (i: number) => `example-${String(i + 1).padStart(2, "0")}`;
  for (const [i, example] of examples.entries()) {
    await writeFile(join(dir, "examples", `${name(i)}.ts`), example.code);
  }
  const env = { ...process.env, CHROMOGENIC_STATE_DIR: join(dir, "state") };

  const tsc = await runIn(dir, env, process.execPath, [
    join(root, "node_modules", "typescript", "bin", "tsc"),
    "-p",
    ".",
  ]);
  // tsc names the example file; say where its block is in the document.
  const located = tsc.stdout.replace(/examples\/example-(\d+)\.ts\((\d+)/g, (_m, n: string, line: string) => {
    const example = examples[Number(n) - 1]!;
    return `docs/LIBRARY.md:${example.line + Number(line)} (example ${Number(n)}, line ${line}`;
  });
  assert.equal(tsc.code, 0, `the examples do not compile:\n${located}${tsc.stderr}`);

  let printed = "";
  for (const [i, example] of examples.entries()) {
    const r = await runIn(dir, env, process.execPath, [join("out", `${name(i)}.js`)]);
    assert.equal(r.code, 0, `the example at docs/LIBRARY.md:${example.line} failed:\n${r.stderr}${r.stdout}`);
    printed += r.stdout;
  }

  // What the examples made is what they say they made.
  const sample = join(dir, "sample.raw");
  for (const copy of ["sample.qcow2", "from-ova.raw", "exported.vmdk", "resumed.qcow2"]) {
    assert.equal((await qemuCompare(sample, join(dir, copy))).code, 0, `${copy} holds the sample disk`);
  }
  assert.equal((await qemuCheck(join(dir, "sample-clean.qcow2"))).code, 0, "the cleaned copy is a sound qcow2");
  assert.equal((await qemuCompare(sample, join(dir, "sample-clean.qcow2"))).code, 1, "cleaning changed the guest");
  const copies = [];
  for await (const image of new LocalProvider(join(dir, "other-store")).listImages()) copies.push(image);
  assert.deepEqual(
    copies.map((c) => [c.name, c.diskFormat]),
    [["sample-copy", "qcow2"]],
    "the migration stored one qcow2 copy",
  );
  assert.match(printed, /^sample\.ova: OVA, sample with 2 CPUs$/m);
  assert.match(printed, /^would \w+ \/\S+ \(\S+\)$/m, "the dry run reported changes");
  assert.match(printed, /^interrupted; resuming job export-/m, "the resume example interrupted its job");
  assert.match(printed, /^damaged\.qcow2: damaged image: /m);
  assert.match(printed, /^cancelled conversion: cancelled, nothing written$/m);
  assert.match(printed, /^unknown format: EUSAGE: /m);
});

test("the library's published types declare no `any`", async () => {
  const dist = join(packageRoot(), "dist", "src");
  const offenders: string[] = [];
  for (const file of (await sourceFiles(dist)).filter((f) => f.endsWith(".d.ts"))) {
    const code = (await readFile(file, "utf8")).replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
    for (const [i, line] of code.split("\n").entries()) {
      if (/\bany\b/.test(line.replace(/(["'`])(?:\\.|(?!\1).)*\1/g, '""')))
        offenders.push(`${relative(dist, file)}:${i + 1}: ${line.trim()}`);
    }
  }
  assert.deepEqual(offenders, [], `declarations with any:\n${offenders.join("\n")}`);
});
