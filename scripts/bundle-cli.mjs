// Bundles the compiled CLI (dist/src/cli/main.js and everything it imports, npm packages included) into
// dist/cli/: one module for what every command needs and one chunk per command, loaded when that command
// runs. Node.js then reads a handful of files at start-up instead of ~130, which took start-up from 0.08 s to
// 0.05 s (a sixth of a whole uncompressed conversion of the benchmark disk). The library and the tests use
// dist/src/ as tsc wrote it; only bin/chromogenic.js loads the bundle.
import { rm } from "node:fs/promises";
import { build } from "esbuild";

// Chunk names carry content hashes: start empty so no stale chunk lingers.
await rm("dist/cli", { recursive: true, force: true });

await build({
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
  logLevel: "warning",
});
