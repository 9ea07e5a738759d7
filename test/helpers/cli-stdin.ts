/**
 * Running the CLI with a file fed to its standard input through a real pipe, as `cat FILE | chromogenic …`
 * does: the CLI reads a pipe that has no size and cannot seek, not a file redirected onto its descriptor.
 */
import { spawn } from "node:child_process";
import { createReadStream } from "node:fs";
import { CLI, type CliResult } from "./tools.js";

export interface StdinFeed {
  /** The file whose bytes go down the pipe. */
  readonly path: string;
  /** Only the first `bytes` of it (a stream cut short). */
  readonly bytes?: number;
}

export function runCliFromStdin(args: readonly string[], feed: StdinFeed, timeoutMs = 300_000): Promise<CliResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const file = createReadStream(feed.path, feed.bytes === undefined ? {} : { end: feed.bytes - 1 });
    // A CLI that refuses the input stops reading it: the pipe's closing is no failure of the test.
    child.stdin.on("error", () => undefined);
    file.on("error", (e) => child.stdin.destroy(e));
    file.pipe(child.stdin);
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      file.destroy();
      resolve({ code, signal, stdout, stderr, seconds: (Date.now() - started) / 1000 });
    });
  });
}
