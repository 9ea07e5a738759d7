/**
 * The pieces of a distributed run for the service's tests: worker processes (bullmq-worker-child.ts) started on
 * the machine or on a network-namespace host, and what the job store says happened (each job's runs and
 * completions, from the events the child's runner records).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { JobStore } from "../../src/service/job-store.js";
import { isFinished, type ServiceJob } from "../../src/service/service-job.js";
import type { WorkerChildConfig } from "./bullmq-worker-child.js";
import type { NetnsHost } from "./netns-hosts.js";

const CHILD = join(import.meta.dirname, "bullmq-worker-child.js");

export interface WorkerProcess {
  readonly name: string;
  readonly pid: number;
  /** Job ids in the order this worker began running them. */
  readonly started: string[];
  /** Resolves with the next job id this worker starts. */
  nextStart(): Promise<string>;
  /** SIGTERM and wait: running jobs end first. */
  stop(): Promise<void>;
  /** kill -9, as a host that dies. */
  kill(): Promise<void>;
  readonly stderr: () => string;
}

export async function startWorkerProcess(config: WorkerChildConfig, host?: NetnsHost): Promise<WorkerProcess> {
  const args = [CHILD, JSON.stringify(config)];
  const child: ChildProcess = host
    ? host.spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] })
    : spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-20_000)));
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  const started: string[] = [];
  const waiting: ((id: string) => void)[] = [];
  const ready = new Promise<{ name: string; pid: number }>((resolve, reject) => {
    child.once("close", (code) => reject(new Error(`worker exited ${code} before it was ready: ${stderr}`)));
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const [word, a, b] = line.split(" ");
      if (word === "ready") resolve({ name: a!, pid: Number(b) });
      if (word === "start") {
        started.push(a!);
        waiting.shift()?.(a!);
      }
    });
  });
  const { name, pid } = await ready;
  return {
    name,
    pid,
    started,
    nextStart: () => new Promise((resolve) => waiting.push(resolve)),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) process.kill(pid, "SIGTERM");
      await exited;
    },
    kill: async () => {
      process.kill(pid, "SIGKILL");
      await exited;
    },
    stderr: () => stderr,
  };
}

/** Waits until every job is finished; throws after `timeoutMs` with the states it saw. */
export async function waitUntilFinished(
  store: JobStore,
  ids: readonly string[],
  timeoutMs: number,
): Promise<ServiceJob[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const jobs = await Promise.all(ids.map((id) => store.get(id)));
    if (jobs.every((j) => j && isFinished(j.state))) return jobs as ServiceJob[];
    if (Date.now() > deadline) {
      const states: Record<string, number> = {};
      for (const j of jobs) states[j?.state ?? "missing"] = (states[j?.state ?? "missing"] ?? 0) + 1;
      throw new Error(`jobs not finished after ${timeoutMs} ms: ${JSON.stringify(states)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Who began running the job and who completed the run, from the child runner's events. */
export async function runsOf(store: JobStore, id: string): Promise<{ runs: string[]; dones: string[] }> {
  const events = await store.events(id, 0, 1000);
  const texts = events.map((e) => (e.event as { text?: string }).text ?? "");
  return {
    runs: texts.filter((t) => t.startsWith("run by ")).map((t) => t.slice("run by ".length)),
    dones: texts.filter((t) => t.startsWith("done by ")).map((t) => t.slice("done by ".length)),
  };
}
