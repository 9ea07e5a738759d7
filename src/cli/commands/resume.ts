import type { Command } from "commander";
import { runJobCommand, type WorkflowOutputFlags } from "./workflow-output.js";
import { printResult } from "../run-command.js";
import { listOptions, printListing, type Columns, type ListFlags } from "../list-output.js";
import type { JobState } from "../../workflows/job-state.js";
import { registerServiceJobCommands } from "./service-jobs.js";

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
      await runJobCommand("resume", flags, (context) => resumeJob(job, context));
    });

  const jobs = listOptions(program.command("jobs"))
    // With the program's: `jobs prune --json` is prune's --json, though `jobs` has one of that name.
    .enablePositionalOptions()
    .description("list jobs and their state (the state directory's jobs/ folder)")
    .option("--json", "the list as one JSON line (a `done` event with `jobs`)")
    .action(async (flags: { json?: boolean } & ListFlags) => {
      const { listJobs, currentStatus } = await import("../../workflows/job-state.js");
      const jobs = (await listJobs()).map((j) => ({
        job: j.id,
        kind: j.request.kind,
        status: currentStatus(j),
        phase: j.phase,
        from: j.request.source,
        to: j.request.destination,
        updatedAt: j.updatedAt,
        error: j.error,
        errorCode: j.errorCode,
      }));
      const output = { command: "jobs", json: !!flags.json, summary: renderJobs } as const;
      printListing(output, { jobs }, jobs, JOB_COLUMNS, flags);
    });
  jobs
    .command("rm")
    .description("forget a job: its record, temporary files and work folder (not while it runs)")
    .argument("<job>", "the job id (see `chromogenic jobs`)")
    .option("--force", "forget it even though it points at a snapshot or unfinished image in a cloud (kept there)")
    .option("--json", "the result as one JSON line (a `done` event)")
    .action(async (job: string, flags: { force?: boolean; json?: boolean }) => {
      const { removeJob } = await import("../../workflows/job-removal.js");
      const removal = await removeJob(job, { force: flags.force });
      printResult({ command: "jobs rm", json: !!flags.json, summary: renderRemoval }, removal);
    });
  jobs
    .command("prune")
    .description("forget the jobs that succeeded (and with --failed, failed ones that left nothing in a cloud)")
    .option("--failed", "also failed and interrupted jobs that point at nothing in a cloud")
    .option("--json", "the result as one JSON line (a `done` event)")
    .action(async (flags: { failed?: boolean; json?: boolean }) => {
      const { pruneJobs } = await import("../../workflows/job-removal.js");
      const pruned = await pruneJobs({ failed: flags.failed });
      const summary = (p: typeof pruned) =>
        p.removed.map((r) => `removed ${r.job} (${r.status})\n`).join("") +
        p.kept.map((k) => `kept ${k.job}: ${k.reason}\n`).join("");
      printResult({ command: "jobs prune", json: !!flags.json, summary }, pruned);
    });
  registerServiceJobCommands(jobs);
}

function renderRemoval(r: { job: string; forgotten: readonly string[] }): string {
  const left = r.forgotten.length ? `; left in the cloud: ${r.forgotten.join(", ")}` : "";
  return `removed ${r.job}${left}\n`;
}

const JOB_COLUMNS: Columns<JobListing> = {
  ID: (j) => j.job,
  Status: (j) => j.status,
  Phase: (j) => j.phase,
  From: (j) => `${j.from.cloud}:${j.from.image ?? `instance ${j.from.instance}`}`,
  To: (j) => (j.to.kind === "cloud" ? j.to.cloud : j.to.path),
  Error: (j) => j.error ?? null,
};

function renderJobs({ jobs }: { jobs: readonly JobListing[] }): string {
  return jobs
    .map((j) => {
      const to = j.to.kind === "cloud" ? j.to.cloud : j.to.path;
      const what = j.from.image ?? `instance ${j.from.instance}`;
      return (
        `${j.job}  ${j.status.padEnd(11)} ${j.phase.padEnd(13)} ${j.from.cloud}:${what} → ${to}` +
        `${j.error ? `  (${j.error})` : ""}\n`
      );
    })
    .join("");
}

interface JobListing {
  readonly job: string;
  readonly status: string;
  readonly phase: string;
  readonly from: JobState["request"]["source"];
  readonly to: JobState["request"]["destination"];
  readonly error?: string;
}
