// Runs the whole suite on the compiled tests with Node's test runner. Node's own summary
// ("# pass N", "# fail N") ends the output; a plain "N passed, N failed" line follows for any CI reader.
import { spawn } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

function testFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...testFiles(p));
    else if (name.endsWith(".test.js")) out.push(p);
  }
  return out.sort();
}

const filter = process.argv.slice(2);
let files = testFiles("dist/test");
if (filter.length) files = files.filter((f) => filter.some((x) => f.includes(x)));
const child = spawn(process.execPath, ["--test", "--test-reporter=spec", "--test-concurrency=2", ...files], {
  stdio: ["ignore", "pipe", "inherit"],
});
let passed = 0;
let failed = 0;
let buffered = "";
child.stdout.on("data", (chunk) => {
  process.stdout.write(chunk);
  buffered += chunk.toString();
  const lines = buffered.split("\n");
  buffered = lines.pop() ?? "";
  for (const line of lines) {
    const m = /^ℹ (pass|fail) (\d+)$/.exec(line.trim());
    if (m) {
      if (m[1] === "pass") passed = Number(m[2]);
      else failed = Number(m[2]);
    }
  }
});
child.on("close", (code) => {
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(code ?? 1);
});
