import type { Command } from "commander";
import { runWorkflowCommand, type WorkflowOutputFlags } from "./workflow-output.js";

export function registerResume(program: Command): void {
  program
    .command("resume")
    .description(
      "continue an interrupted or failed job where it stopped: downloads resume with Range, a half-made " +
        "destination image is deleted and uploaded again, the temporary snapshot is deleted at the end",
    )
    .argument("<job>", "the job id (see `chromogenic jobs`)")
    .option("--json", "JSON-lines progress events and result on stdout")
    .option("-q, --quiet", "no progress")
    .action(async (job: string, flags: WorkflowOutputFlags) => {
      const { resumeJob } = await import("../../workflows/image-job.js");
      await runWorkflowCommand(flags, (context) => resumeJob(job, context));
    });

  program
    .command("jobs")
    .description("list jobs and their state (the state directory's jobs/ folder)")
    .option("--json", "one JSON object per job")
    .action(async (flags: { json?: boolean }) => {
      const { listJobs, currentStatus } = await import("../../workflows/job-state.js");
      for (const j of await listJobs()) {
        const status = currentStatus(j);
        if (flags.json) {
          process.stdout.write(
            JSON.stringify({
              job: j.id,
              kind: j.request.kind,
              status,
              phase: j.phase,
              from: j.request.source,
              to: j.request.destination,
              updatedAt: j.updatedAt,
              error: j.error,
            }) + "\n",
          );
        } else {
          const to = j.request.destination.kind === "cloud" ? j.request.destination.cloud : j.request.destination.path;
          const what = j.request.source.image ?? `instance ${j.request.source.instance}`;
          process.stdout.write(
            `${j.id}  ${status.padEnd(11)} ${j.phase.padEnd(13)} ${j.request.source.cloud}:${what} → ${to}` +
              `${j.error ? `  (${j.error})` : ""}\n`,
          );
        }
      }
    });
}
