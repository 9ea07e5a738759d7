import type { Command } from "commander";
import type { DemoResult } from "../../workflows/demo.js";
import { formatBytes } from "../../util/human.js";
import { runCommand } from "../run-command.js";

export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description(
      "with no cloud: put a generated sample guest disk in a local image store, clean it (as root), export it " +
        "as a VirtualBox OVA and as qcow2, and verify every output",
    )
    .option("--dir <dir>", "where to put the sample, the local store and the exports", "chromogenic-demo")
    .option("--no-clean", "skip cleaning even as root")
    .option("--json", "events and the result as JSON lines on stdout")
    .option("-q, --quiet", "no progress")
    .action(async (opts: { dir: string; json?: boolean; quiet?: boolean; clean: boolean }) => {
      await runCommand(
        { command: "demo", json: !!opts.json, quiet: !!opts.quiet, summary: renderDemo },
        async ({ onEvent }) => {
          const { runDemo } = await import("../../workflows/demo.js");
          const result = await runDemo(opts.dir, { onEvent, clean: opts.clean });
          if (!result.verified) process.exitCode = 1;
          return result;
        },
      );
    });
}

function renderDemo(result: DemoResult): string {
  const lines: string[] = [];
  const out = (s: string) => lines.push(s);
  const s = result.sample;
  out(`sample disk: ${s.path} (${formatBytes(s.size)}, ${s.content} partition), disk sha256 ${result.sampleSha256}`);
  out(`local image store: ${result.store} (image ${result.sampleImageId})`);
  if (result.cleaning) {
    out(
      `cleaned (job ${result.cleaning.job}): ${result.cleaning.changes} change(s), ` +
        `${result.cleaning.operations.length} operations run; cleaned disk sha256 ${result.exportedSha256}`,
    );
  } else {
    out(`cleaning skipped: ${result.cleaningSkipped} (run as root to clean); exporting the sample as it is`);
  }
  for (const e of result.exports) {
    const same = e.sha256 === result.exportedSha256 ? "identical disk" : "DIFFERENT DISK";
    const tools = [
      e.qemuImgCheck && `qemu-img check: ${e.qemuImgCheck}`,
      e.qemuImgCompare && `qemu-img compare: ${e.qemuImgCompare}`,
    ]
      .filter(Boolean)
      .join(", ");
    out(`export ${e.format}: ${e.output} in ${e.seconds.toFixed(2)} s, ${same}${tools ? `; ${tools}` : ""}`);
  }
  out(result.verified ? "demo: all outputs verified" : "demo: VERIFICATION FAILED");
  return lines.join("\n") + "\n";
}
