/**
 * The API's Prometheus metrics (prom-client, a registry per server):
 *
 *   chromogenic_jobs{state}                      jobs in the store by state, read at each scrape
 *   chromogenic_http_request_duration_seconds    the API's answers, by method, route and status
 *   chromogenic_job_duration_seconds{kind,state} finished jobs, from started to finished
 *   chromogenic_job_bytes_total{kind}            bytes finished jobs moved
 *
 * The last two come from the store, so they hold whichever host's worker ran the job: every `metricsPollMs`
 * the API lists the running jobs and the jobs submitted since its last look, and keeps their ids; a kept job
 * that is no longer running is read again, and once finished it is counted, once per API process. Jobs still
 * queued are kept too, and the oldest of them (those the workers claim next) are read again at each look, so a
 * job that runs entirely between two looks is counted as well. A job's bytes are its result's `bytes` (a
 * number, or an object of numbers added up, as the library's `{download, upload}`), else its last progress.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { JobStore } from "../job-store.js";
import { isFinished, SERVICE_JOB_STATES, type ServiceJob } from "../service-job.js";

/** How many of the oldest queued jobs are read again at each look. */
const QUEUED_RECHECK = 64;
/** Ids counted lately, so that a job met again in a listing is not counted twice. */
const COUNTED_MEMORY = 10_000;

export class ApiMetrics {
  readonly registry = new Registry();
  readonly requestDuration: Histogram<"method" | "route" | "status">;
  private readonly jobDuration: Histogram<"kind" | "state">;
  private readonly jobBytes: Counter<"kind">;
  /** Unfinished jobs seen, in the order they were submitted (Map keeps insertion order). */
  private readonly open = new Map<string, "queued" | "running">();
  private readonly counted = new Set<string>();
  private lastLook: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private looking: Promise<void> | undefined;

  constructor(private readonly store: JobStore) {
    const registers = [this.registry];
    new Gauge({
      name: "chromogenic_jobs",
      help: "jobs in the store, by state",
      labelNames: ["state"],
      registers,
      collect: async function (this: Gauge<"state">) {
        const counts = await store.countByState();
        for (const state of SERVICE_JOB_STATES) this.set({ state }, counts[state] ?? 0);
      },
    });
    this.requestDuration = new Histogram({
      name: "chromogenic_http_request_duration_seconds",
      help: "time to answer an API request",
      labelNames: ["method", "route", "status"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.jobDuration = new Histogram({
      name: "chromogenic_job_duration_seconds",
      help: "finished jobs, from a worker starting them to their end",
      labelNames: ["kind", "state"],
      buckets: [1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600],
      registers,
    });
    this.jobBytes = new Counter({
      name: "chromogenic_job_bytes_total",
      help: "bytes that finished jobs moved",
      labelNames: ["kind"],
      registers,
    });
  }

  /** Starts looking for finished jobs every `pollMs`. */
  start(pollMs: number): void {
    const tick = () => {
      this.look()
        .catch(() => undefined)
        .finally(() => {
          if (this.timer) this.timer = setTimeout(tick, pollMs).unref();
        });
    };
    this.timer = setTimeout(tick, 0).unref();
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.looking;
  }

  /** The metrics in Prometheus text, after a look so a scrape sees jobs that just finished. */
  async text(): Promise<string> {
    await this.look().catch(() => undefined);
    return this.registry.metrics();
  }

  look(): Promise<void> {
    this.looking ??= this.lookOnce().finally(() => (this.looking = undefined));
    return this.looking;
  }

  private async lookOnce(): Promise<void> {
    const startedAt = new Date().toISOString();
    const recheck = new Set<string>();
    for (const job of await this.newJobs()) this.see(job, recheck);
    const running = new Set<string>();
    for await (const job of this.pages({ state: "running" })) {
      running.add(job.id);
      this.see(job, recheck);
    }
    let queued = 0;
    for (const [id, state] of this.open) {
      if (state === "running" && !running.has(id)) recheck.add(id);
      if (state === "queued" && queued++ < QUEUED_RECHECK) recheck.add(id);
    }
    for (const id of recheck) {
      const job = await this.store.get(id);
      if (job) this.see(job, new Set());
      else this.open.delete(id);
    }
    this.lastLook = startedAt;
  }

  /** Jobs submitted since the last look (at the first look: every unfinished job). */
  private async newJobs(): Promise<ServiceJob[]> {
    if (this.lastLook === undefined) {
      const unfinished: ServiceJob[] = [];
      for await (const job of this.pages({ state: "queued" })) unfinished.push(job);
      for (const job of unfinished.reverse()) this.open.set(job.id, "queued");
      return [];
    }
    // A second of overlap for a job stamped just before the last look but stored after it; see() takes a job
    // met twice once.
    const horizon = new Date(Date.parse(this.lastLook) - 1000).toISOString();
    const since: ServiceJob[] = [];
    // Small pages: most looks find no new job, and stop at the first row.
    for await (const job of this.pages({}, 20)) {
      if (job.createdAt < horizon) break;
      since.push(job);
    }
    return since.reverse();
  }

  private async *pages(filter: { state?: "queued" | "running" }, limit = 200): AsyncGenerator<ServiceJob> {
    let cursor: string | undefined;
    do {
      const page = await this.store.list({ ...filter, limit, ...(cursor ? { cursor } : {}) });
      yield* page.jobs;
      cursor = page.next;
    } while (cursor);
  }

  private see(job: ServiceJob, recheck: Set<string>): void {
    if (!isFinished(job.state)) {
      if (!this.counted.has(job.id)) this.open.set(job.id, job.state as "queued" | "running");
      return;
    }
    recheck.delete(job.id);
    this.open.delete(job.id);
    if (this.counted.has(job.id)) return;
    this.counted.add(job.id);
    if (this.counted.size > COUNTED_MEMORY) this.counted.delete(this.counted.values().next().value!);
    if (job.startedAt && job.finishedAt) {
      const seconds = (Date.parse(job.finishedAt) - Date.parse(job.startedAt)) / 1000;
      this.jobDuration.observe({ kind: job.kind, state: job.state }, Math.max(0, seconds));
    }
    const bytes = jobBytes(job);
    if (bytes > 0) this.jobBytes.inc({ kind: job.kind }, bytes);
  }
}

/** What a finished job moved: its result's `bytes`, else its last progress's. */
export function jobBytes(job: ServiceJob): number {
  const reported = job.result?.["bytes"];
  if (typeof reported === "number" && Number.isFinite(reported)) return reported;
  if (reported && typeof reported === "object") {
    return Object.values(reported).reduce<number>(
      (sum, v) => sum + (typeof v === "number" && Number.isFinite(v) ? v : 0),
      0,
    );
  }
  return job.progress?.bytes ?? 0;
}
