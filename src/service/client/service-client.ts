/**
 * A client of a chromogenic service's HTTP API (`chromogenic serve`): submit a job with an idempotency key,
 * read one, cancel one, and follow its events — the same events, in the same schema (util/events.ts), that a
 * local run of the job hands its listeners. The CLI's `--server` runs jobs through it; nothing here knows
 * about the CLI.
 */
import { randomUUID } from "node:crypto";
import type { ChromogenicEvent } from "../../util/events.js";
import { TransferError } from "../../util/errors.js";
import type { JobSpec } from "../job-spec.js";
import type { ServiceJob } from "../service-job.js";
import { errorSentence, ServiceRequestError } from "./service-request-error.js";
import { sseMessages } from "./sse-messages.js";

export interface ServiceClientOptions {
  /** The service's address, e.g. http://imaging.example:8080 (a path prefix is kept). */
  readonly server: string;
  /** The bearer token; never logged, never part of an error message. */
  readonly token?: string;
}

export interface NumberedEvent {
  /** The event's number in its job, from 1: what a resumed stream passes as Last-Event-ID. */
  readonly seq: number;
  readonly event: ChromogenicEvent;
}

/** How often a submission whose answer was lost is sent again (with the same key, so it starts one job). */
const SUBMIT_ATTEMPTS = 4;

export class ServiceClient {
  private readonly base: URL;

  constructor(private readonly options: ServiceClientOptions) {
    let base: URL;
    try {
      base = new URL(options.server);
    } catch {
      throw new ServiceRequestError(400, `--server "${options.server}" is not a URL`);
    }
    if (base.protocol !== "http:" && base.protocol !== "https:") {
      throw new ServiceRequestError(400, `--server "${options.server}" is not an http or https URL`);
    }
    if (!base.pathname.endsWith("/")) base.pathname += "/";
    this.base = base;
  }

  /** The service's address as given, for messages. */
  get server(): string {
    return this.options.server;
  }

  /**
   * Submits `spec`; the job the service created, or the one an earlier submission with `idempotencyKey` did.
   * A connection that fails before an answer is retried with the same key: the service starts the job once.
   */
  async submit(spec: JobSpec, idempotencyKey: string = randomUUID(), signal?: AbortSignal): Promise<ServiceJob> {
    for (let attempt = 1; ; attempt++) {
      let response: Response;
      try {
        response = await this.request("POST", "v1/jobs", {
          body: JSON.stringify(spec),
          headers: { "content-type": "application/json", "idempotency-key": idempotencyKey },
          signal,
        });
      } catch (e) {
        if (signal?.aborted || attempt >= SUBMIT_ATTEMPTS || !(e instanceof TransferError)) throw e;
        await delay(250 * 2 ** attempt, signal);
        continue;
      }
      return jobOf(await this.json(response, "submitting the job"));
    }
  }

  async get(id: string, signal?: AbortSignal): Promise<ServiceJob> {
    return jobOf(await this.json(await this.request("GET", jobPath(id), { signal }), `job ${id}`));
  }

  /** Asks the service to cancel the job: it undoes the job's cloud leftovers as a Ctrl-C would. */
  async cancel(id: string, signal?: AbortSignal): Promise<ServiceJob> {
    return jobOf(await this.json(await this.request("DELETE", jobPath(id), { signal }), `cancelling job ${id}`));
  }

  /**
   * The job's events numbered above `afterSeq`, as they come, until the service ends the stream (the job
   * finished) or `signal` aborts. A dropped connection resumes where it stopped (Last-Event-ID); an event
   * that is not valid JSON stops the stream with an error rather than being shown half.
   */
  async *events(id: string, options: { afterSeq?: number; signal?: AbortSignal } = {}): AsyncGenerator<NumberedEvent> {
    let last = options.afterSeq ?? 0;
    let failures = 0;
    for (;;) {
      let ended = false;
      try {
        const headers: Record<string, string> = { accept: "text/event-stream" };
        if (last > 0) headers["last-event-id"] = String(last);
        const response = await this.request("GET", `${jobPath(id)}/events`, { headers, signal: options.signal });
        if (!response.ok)
          throw new ServiceRequestError(response.status, await errorSentence(response, `job ${id}'s events`));
        if (!response.body) throw new TransferError(`job ${id}'s events: the service sent no body`);
        for await (const message of sseMessages(response.body)) {
          // `end` closes the stream with the job's record, which followJob reads itself.
          if (message.event !== "message") continue;
          let event: ChromogenicEvent;
          try {
            event = JSON.parse(message.data) as ChromogenicEvent;
          } catch {
            throw new ServiceRequestError(502, `job ${id}'s events: the service sent an event that is not JSON`);
          }
          const seq = message.id !== undefined && /^\d+$/.test(message.id) ? Number(message.id) : last + 1;
          if (seq <= last) continue;
          last = seq;
          failures = 0;
          yield { seq, event };
        }
        ended = true;
      } catch (e) {
        if (options.signal?.aborted) return;
        if (!(e instanceof TransferError) && !isStreamBreak(e)) throw e;
        if (++failures > 5) throw e;
        await delay(200 * 2 ** failures, options.signal);
        continue;
      }
      if (ended) return;
    }
  }

  private async request(
    method: string,
    path: string,
    init: { body?: string; headers?: Record<string, string>; signal?: AbortSignal },
  ): Promise<Response> {
    const headers: Record<string, string> = { ...init.headers };
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    try {
      return await fetch(new URL(path, this.base), { method, headers, body: init.body, signal: init.signal });
    } catch (e) {
      if (init.signal?.aborted) throw e;
      const cause = (e as { cause?: { code?: unknown; message?: unknown } }).cause;
      const why =
        typeof cause?.code === "string" ? cause.code : typeof cause?.message === "string" ? cause.message : String(e);
      throw new TransferError(`${this.options.server}: cannot reach the service (${why})`, { cause: e });
    }
  }

  private async json(response: Response, what: string): Promise<unknown> {
    if (!response.ok) throw new ServiceRequestError(response.status, await errorSentence(response, what));
    try {
      return await response.json();
    } catch {
      throw new ServiceRequestError(502, `${what}: the service's answer is not JSON`);
    }
  }
}

function jobPath(id: string): string {
  return `v1/jobs/${encodeURIComponent(id)}`;
}

/** A job from an answer that is the job itself or wraps it as `{ job }`. */
function jobOf(body: unknown): ServiceJob {
  const job = (body as { job?: unknown } | null)?.job ?? body;
  if (
    typeof (job as { id?: unknown } | null)?.id !== "string" ||
    typeof (job as { state?: unknown }).state !== "string"
  ) {
    throw new ServiceRequestError(502, "the service's answer is not a job");
  }
  return job as ServiceJob;
}

/** A body that broke off mid-stream (the connection reset): resumable, as a refused connection is. */
function isStreamBreak(e: unknown): boolean {
  const name = (e as { name?: unknown } | null)?.name;
  const code =
    (e as { code?: unknown; cause?: { code?: unknown } } | null)?.cause?.code ?? (e as { code?: unknown }).code;
  return (
    name === "TypeError" || name === "SocketError" || (typeof code === "string" && /^(ECONNRESET|UND_ERR_)/.test(code))
  );
}

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
