// Bundles the compiled CLI (dist/src/cli/main.js and everything it imports, npm packages included) into
// dist/cli/: one module for what every command needs and one chunk per command, loaded when that command
// runs. Node.js then reads a handful of files at start-up instead of ~130, which took start-up from 0.08 s to
// 0.05 s (a sixth of a whole uncompressed conversion of the benchmark disk). The library and the tests use
// dist/src/ as tsc wrote it; only bin/chromogenic.js loads the bundle.
import { readdir, readFile, rm } from "node:fs/promises";
import { build } from "esbuild";

// Chunk names carry content hashes: start empty so no stale chunk lingers.
await rm("dist/cli", { recursive: true, force: true });

const result = await build({
  entryPoints: { main: "dist/src/cli/main.js" },
  outdir: "dist/cli",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node22",
  // commander and other CommonJS packages call require(); an ES module has none of its own.
  banner: {
    js: "import { createRequire as __cgRequire } from 'node:module'; const require = __cgRequire(import.meta.url);",
  },
  // ssh2 (Eucalyptus node-controller copies) loads native addons (.node files) that a bundle cannot carry:
  // it is loaded from node_modules when a copy runs. BullMQ imports its sandboxed processors by a computed
  // path and pg an optional native client: they and ioredis are loaded from node_modules by the service
  // commands (serve --redis, worker, a postgres:// store), the only ones that use them.
  external: ["ssh2", "bullmq", "ioredis", "pg"],
  logLevel: "warning",
});
if (result.warnings.length > 0) {
  console.error(`bundle-cli: ${result.warnings.length} warning(s); refusing a bundle that may be incomplete`);
  process.exit(1);
}
// esbuild leaves an import() with a computed specifier as it is, pointing at a path that does not exist next to
// the bundle: it would fail only when the command reaching it runs (it did, once). Refuse such a bundle.
for (const name of await readdir("dist/cli")) {
  const code = await readFile(`dist/cli/${name}`, "utf8");
  const computed = code.split("\n").find((line) => /\bimport\(\s*[^"'`\s)]/.test(line) && !/^\s*\/\//.test(line));
  if (computed) {
    console.error(
      `bundle-cli: ${name} has an import() the bundle cannot follow (use a literal path): ${computed.trim()}`,
    );
    process.exit(1);
  }
}
