import type { Command } from "commander";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { runDemo } from "../../workflows/demo.js";
import { progressDisplay } from "../progress-display.js";
import { formatBytes } from "../../util/human.js";

const execFileP = promisify(execFile);

export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description(
      "generate a sample guest disk, convert it (raw → qcow2 → raw), export it as a VirtualBox OVA and read " +
        "it back, verifying every output",
    )
    .option("--dir <dir>", "where to put the sample and its conversions", "chromogenic-demo")
    .option("--json", "print the result as JSON")
    .action(async (opts: { dir: string; json?: boolean }) => {
      const display = progressDisplay({ json: false, quiet: !!opts.json });
      const result = await runDemo(opts.dir, display.listener);
      display.close();
      const checks: { file: string; qemuImgCheck: string }[] = [];
      for (const c of result.steps) {
        if (c.outputFormat !== "qcow2") continue;
        const r = await execFileP("qemu-img", ["check", c.output]).then(
          () => "clean",
          (e: { code?: number | string }) => (e.code === "ENOENT" ? "qemu-img not installed" : `exit ${e.code}`),
        );
        checks.push({ file: c.output, qemuImgCheck: r });
      }
      if (opts.json) {
        process.stdout.write(JSON.stringify({ ...result, checks }, null, 2) + "\n");
      } else {
        const s = result.sample;
        process.stdout.write(`sample disk: ${s.path} (${formatBytes(s.size)}, ${s.content} partition)\n`);
        process.stdout.write(`  disk sha256 ${result.sourceSha256}\n`);
        for (const c of result.steps) {
          const ok = c.sha256 === result.sourceSha256 ? "identical" : "DIFFERENT";
          process.stdout.write(
            `${c.step}: ${c.output}  ${formatBytes(c.dataBytes)} data in ${c.seconds.toFixed(2)} s, disk ${ok}\n`,
          );
        }
        for (const c of checks) process.stdout.write(`qemu-img check ${c.file}: ${c.qemuImgCheck}\n`);
        process.stdout.write(result.verified ? "demo: all outputs verified\n" : "demo: VERIFICATION FAILED\n");
      }
      if (
        !result.verified ||
        checks.some((c) => c.qemuImgCheck !== "clean" && c.qemuImgCheck !== "qemu-img not installed")
      )
        process.exitCode = 1;
    });
}
