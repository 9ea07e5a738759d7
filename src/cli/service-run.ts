/**
 * A job command run on a service (`--server`): the job submitted as the request a local run would start, then
 * followed as a local run is shown — the same display of the same events (progress-display.ts), the same
 * `done` or `error` line with --json, the same exit status. Ctrl-C does not cancel it: the job runs in the
 * service, so the CLI only stops following, and says how to follow it again or cancel it.
 */
import type { CommandName, DoneEvent, ErrorEvent } from "../util/events.js";
import type { JobSpec } from "../service/job-spec.js";
import type { ServiceClient } from "../service/client/service-client.js";
import { followJob } from "../service/client/follow-job.js";
import { eventDisplay } from "./progress-display.js";
import { reportError } from "./error-report.js";
import { serviceClient, type ServiceFlags } from "./service-options.js";
import { ERROR_CODES } from "../util/errors.js";

export interface ServiceRunFlags extends ServiceFlags {
  readonly json?: boolean;
  readonly quiet?: boolean;
}

/** How a succeeded job's result reads for people: the local run's summary, where the local run prints it. */
export interface ResultSummary {
  readonly text: (done: DoneEvent) => string;
  /** stderr when the command's stdout may carry data (convert's); --quiet then silences it, as run-command.ts does. */
  readonly to: "stdout" | "stderr";
}

/** Submits `spec` to `--server` and follows it to its end. */
export async function runServiceJob(
  command: CommandName,
  flags: ServiceRunFlags,
  spec: JobSpec,
  summary?: ResultSummary,
): Promise<void> {
  const client = await serviceClient(flags);
  await following(
    flags,
    client,
    async (signal, show) => {
      const job = await client.submit(spec, undefined, signal);
      show.job(job.id);
      return { id: job.id, followed: await followJob(client, job.id, show.event, { command, signal }) };
    },
    summary,
  );
}

/** `jobs follow ID --server`: a job's events from its first, and its end, as if it had been started here. */
export async function followServiceJob(flags: ServiceRunFlags, id: string, summary?: ResultSummary): Promise<void> {
  const client = await serviceClient(flags);
  await following(
    flags,
    client,
    async (signal, show) => {
      const job = await client.get(id, signal);
      show.job(job.id);
      return { id, followed: await followJob(client, id, show.event, { command: commandOfKind(job.kind), signal }) };
    },
    summary,
  );
}

/** The command whose `done` event a job of `kind` ends with. */
export function commandOfKind(kind: string): CommandName {
  return kind === "image-create" ? "image create" : (kind as CommandName);
}

interface Shown {
  readonly job: (id: string) => void;
  readonly event: Parameters<typeof followJob>[2];
}

async function following(
  flags: ServiceRunFlags,
  client: ServiceClient,
  work: (
    signal: AbortSignal,
    show: Shown,
  ) => Promise<{ id: string; followed: { done?: DoneEvent; error?: ErrorEvent } }>,
  summary: ResultSummary | undefined,
): Promise<void> {
  const json = !!flags.json;
  const display = eventDisplay({ json, quiet: !!flags.quiet, logPhases: true });
  const detach = new AbortController();
  const onSignal = () => detach.abort();
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  let jobId: string | undefined;
  try {
    const { followed } = await work(detach.signal, {
      job: (id) => {
        jobId = id;
        display.show({ event: "job", job: id });
      },
      // The library's own job id (a `job` event of the worker's run) is the service's business: the id to
      // follow or cancel is the service's, shown once, as a local run shows its job id once.
      event: (e) => {
        if (e.event !== "job") display.show(e);
      },
    });
    display.close();
    if (followed.done) printDone(followed.done, flags, summary);
    else if (followed.error) process.exitCode = printError({ ...followed.error, job: jobId! }, json);
  } catch (e) {
    display.close();
    if (detach.signal.aborted && jobId !== undefined) process.exitCode = detached(client, jobId, json);
    else process.exitCode = reportError(e, { json, job: jobId });
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

function printDone(done: DoneEvent, flags: ServiceRunFlags, summary: ResultSummary | undefined): void {
  if (flags.json) {
    process.stdout.write(JSON.stringify(done) + "\n");
    return;
  }
  let text: string | undefined;
  try {
    text = summary?.text(done);
  } catch {
    // a result whose shape the summary does not know (a newer service): its JSON says it all
  }
  const { event: _event, command: _command, ...result } = done;
  text ??= JSON.stringify(result);
  text = text.endsWith("\n") ? text : text + "\n";
  if (summary?.to === "stderr") {
    if (!flags.quiet) process.stderr.write(text);
  } else process.stdout.write(text);
}

function printError(error: ErrorEvent, json: boolean): number {
  if (json) process.stdout.write(JSON.stringify(error) + "\n");
  process.stderr.write(`chromogenic: ${error.message}\n`);
  return error.exitCode;
}

/** Ctrl-C while following: the job goes on in the service; how to see it again, or stop it. */
function detached(client: ServiceClient, id: string, json: boolean): number {
  const server = shellWord(client.server);
  const message =
    `stopped following job ${id}; it goes on in the service. Follow it: chromogenic jobs follow ${id} --server ` +
    `${server}; cancel it: chromogenic jobs cancel ${id} --server ${server}`;
  return printError({ event: "error", job: id, code: "EABORTED", message, exitCode: ERROR_CODES.EABORTED }, json);
}

function shellWord(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, "'\\''")}'`;
}
