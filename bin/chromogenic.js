#!/usr/bin/env node
// Entry point. chromogenic needs Node.js 22.3 or newer (process.getBuiltinModule); when started by an older
// system Node, re-run under the Node.js the project provisioned in node_modules (see scripts/setup.sh).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const major = Number(process.versions.node.split(".")[0]);
if (major < 22 || typeof process.getBuiltinModule !== "function") {
  const provisioned = fileURLToPath(new URL("../node_modules/.bin/node", import.meta.url));
  if (!existsSync(provisioned)) {
    // A git checkout has its setup script; an installed package has only npm's ways to get a newer Node.js.
    const setup = fileURLToPath(new URL("../scripts/setup.sh", import.meta.url));
    const how = existsSync(setup)
      ? `run ${setup}, which provisions one`
      : "install one (your distribution's nodejs, nvm, or `npx -p node@24 -p chromogenic chromogenic ...`)";
    console.error(`chromogenic: Node.js ${process.version} is too old, 22.3 or newer is needed: ${how}`);
    process.exit(1);
  }
  const r = spawnSync(provisioned, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: "inherit" });
  process.exit(r.status ?? 1);
}
// Commands that may mount a guest run in a private mount namespace of their own (as root, where `unshare`
// exists): their mounts are invisible to the host, and if the process dies — even by kill -9 — the kernel
// drops them with the namespace, so no guest filesystem stays mounted on the host. The process image is
// replaced (execve keeps the PID), so signals and exit codes reach the caller exactly as before. Loop devices
// and LVM activations are global, and stay in the journal for `guest cleanup` (which itself must run in the
// host's namespace, so it is not in this list).
const MOUNTING_COMMANDS = new Set(["inspect", "clean", "bootable", "demo", "image", "export", "migrate", "resume"]);
if (
  MOUNTING_COMMANDS.has(process.argv[2] ?? "") &&
  process.platform === "linux" &&
  process.getuid?.() === 0 &&
  !process.env.CHROMOGENIC_MOUNT_NAMESPACE &&
  typeof process.execve === "function" &&
  existsSync("/usr/bin/unshare")
) {
  process.execve(
    "/usr/bin/unshare",
    ["unshare", "--mount", "--propagation", "private", "--", process.execPath, ...process.argv.slice(1)],
    { ...process.env, CHROMOGENIC_MOUNT_NAMESPACE: "private" },
  );
}
// File I/O and compression run on libuv's threadpool, which is sized once, at its first use: size it for this
// machine before anything can touch it (an explicit UV_THREADPOOL_SIZE from the user wins). One thread per CPU,
// as src/formats/engine/compression-pool.ts sets for library users, where the measurements are.
const { availableParallelism } = await import("node:os");
process.env.UV_THREADPOOL_SIZE ??= String(Math.max(2, availableParallelism()));
// Cache compiled modules on disk: start-up counts when a conversion itself takes a fraction of a second.
const { enableCompileCache } = await import("node:module");
enableCompileCache?.();
// The single-file bundle of the CLI (scripts/bundle-cli.mjs): fewer files to load than dist/src/.
const { main } = await import("../dist/cli/main.js");
await main(process.argv);
