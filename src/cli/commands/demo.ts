import type { Command } from "commander";
import type { WorkflowEvent } from "../../workflows/workflow-events.js";
import { formatBytes, formatDuration } from "../../util/human.js";

export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description(
      "with no cloud: put a generated sample guest disk in a local image store, clean it (as root), export it " +
        "as a VirtualBox OVA and as qcow2, and verify every output",
    )
    .option("--dir <dir>", "where to put the sample, the local store and the exports", "chromogenic-demo")
    .option("--no-clean", "skip cleaning even as root")
    .option("--json", "print the result as JSON")
    .action(async (opts: { dir: string; json?: boolean; clean: boolean }) => {
      const tty = !opts.json && process.stderr.isTTY;
      const onEvent = tty
        ? (e: WorkflowEvent) => {
            if (e.event === "progress" && e.total)
              process.stderr.write(
                `\r${e.phase} ${formatBytes(e.bytes)}/${formatBytes(e.total)} ${formatDuration(e.eta ?? NaN)}\x1b[K`,
              );
            else if (e.event === "phase" && e.state === "end") process.stderr.write("\r\x1b[K");
          }
        : undefined;
      const { runDemo } = await import("../../workflows/demo.js");
      const result = await runDemo(opts.dir, { onEvent, clean: opts.clean });
      if (opts.json) {
        process.stdout.write(JSON.stringify(result, null, 2) + "\n");
      } else {
        const out = (s: string) => process.stdout.write(s + "\n");
        const s = result.sample;
        out(
          `sample disk: ${s.path} (${formatBytes(s.size)}, ${s.content} partition), disk sha256 ${result.sampleSha256}`,
        );
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
      }
      if (!result.verified) process.exitCode = 1;
    });
}
