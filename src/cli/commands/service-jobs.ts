/**
 * `jobs follow ID --server URL` and `jobs cancel ID --server URL`: a job of a service watched as if it ran here
 * (its events from the first, its result, its exit status), or cancelled — the service undoes its cloud
 * leftovers as a Ctrl-C of a local run would.
 */
import type { Command } from "commander";
import { printResult } from "../run-command.js";
import { serviceClient, serviceOptions, type ServiceFlags } from "../service-options.js";
import { jobSummary } from "./workflow-output.js";

interface ServiceJobFlags extends ServiceFlags {
  readonly json?: boolean;
  readonly quiet?: boolean;
}

export function registerServiceJobCommands(jobs: Command): void {
  serviceOptions(
    jobs
      .command("follow")
      .description("follow a job of a service (`--server`) to its end, as if it ran here: its events, its result")
      .argument("<job>", "the service's job id (printed when it was submitted)")
      .option("--json", "JSON-lines progress events and result on stdout")
      .option("-q, --quiet", "no progress"),
  ).action(async (job: string, flags: ServiceJobFlags) => {
    const { followServiceJob } = await import("../service-run.js");
    await followServiceJob(flags, job, { text: jobSummary, to: "stdout" });
  });
  serviceOptions(
    jobs
      .command("cancel")
      .description("cancel a job of a service (`--server`): it stops and its cloud leftovers are removed")
      .argument("<job>", "the service's job id")
      .option("--json", "the job's record as one JSON line (a `done` event)"),
  ).action(async (id: string, flags: ServiceJobFlags) => {
    const job = await (await serviceClient(flags)).cancel(id);
    const result = { job: job.id, state: job.state, cancelRequested: job.cancelRequested };
    const summary = (r: typeof result) =>
      r.state === "cancelled" ? `job ${r.job} cancelled` : `job ${r.job}: cancel requested (${r.state})`;
    printResult({ command: "jobs cancel", json: !!flags.json, summary }, result);
  });
}
