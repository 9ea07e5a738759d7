/**
 * The /v1/jobs routes. A submission is checked in full before anything is stored: its shape (JobSpecSchema,
 * unknown fields refused), the token's rights on its kind and every cloud it names (403), and every path it names
 * against the allowed folders (400); only then does the store queue it. A token sees and cancels its own jobs;
 * an admin token every job. Another owner's job answers 404, so ids cannot be probed.
 */
import { isDeepStrictEqual } from "node:util";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { JobSpecSchema, type JobSpec } from "../job-spec.js";
import type { JobStore } from "../job-store.js";
import { checkJobPaths, PathNotAllowedError, type AllowedFolders } from "../service-paths.js";
import type { ServiceJob } from "../service-job.js";
import { ApiError } from "./api-error.js";
import { EventsQuerySchema, IdempotencyKeySchema, JobIdSchema, ListJobsQuerySchema } from "./api-schemas.js";
import { refusal, type Principal } from "./api-tokens.js";
import { jobClouds } from "../job-spec.js";
import { resumePoint, streamJobEvents } from "./job-event-stream.js";

export interface JobRoutesOptions {
  readonly store: JobStore;
  readonly folders: AllowedFolders;
  readonly eventPollMs: number;
  readonly heartbeatMs: number;
  /** Aborted when the server closes: ends the event streams. */
  readonly closing: AbortSignal;
  /** The route-level hooks that admit a request with a known token. */
  readonly authenticated: { preParsing: (request: FastifyRequest, reply: FastifyReply) => Promise<void> };
}

export function registerJobRoutes(app: FastifyInstance, options: JobRoutesOptions): void {
  const { store, folders, authenticated } = options;

  app.post("/v1/jobs", authenticated, async (request, reply) => {
    const principal = request.principal!;
    request.audit = { action: "submit" };
    const spec = parse(JobSpecSchema, request.body, "invalid-job", "the job");
    request.audit = { action: "submit", kind: spec.kind, clouds: jobClouds(spec) };
    const key = idempotencyKey(request.headers["idempotency-key"]);
    const why = refusal(principal, spec);
    if (why) throw new ApiError(403, "forbidden", why);
    await checkPaths(spec, folders);
    const submission = { spec, owner: principal.name, ...(key !== undefined ? { idempotencyKey: key } : {}) };
    // Two retries racing with one key: the store's unique index refuses the second insert, which then finds
    // the first job.
    const { job, created } = await store
      .submit(submission)
      .catch((e: unknown) => (key === undefined ? Promise.reject(e) : store.submit(submission)));
    request.audit = { ...request.audit, job: job.id, outcome: created ? "created" : "existing" };
    if (!created && !isDeepStrictEqual(job.spec, spec))
      throw new ApiError(409, "idempotency-conflict", `Idempotency-Key "${key}" was used for another job (${job.id})`);
    return reply
      .code(created ? 201 : 200)
      .header("location", `/v1/jobs/${job.id}`)
      .send(job);
  });

  app.get("/v1/jobs", authenticated, async (request) => {
    const principal = request.principal!;
    const query = parse(ListJobsQuerySchema, request.query, "bad-request", "the query");
    if (query.owner !== undefined && !principal.admin && query.owner !== principal.name)
      throw new ApiError(403, "forbidden", "only an admin token lists other owners' jobs");
    const owner = principal.admin ? query.owner : principal.name;
    try {
      return await store.list({
        limit: query.limit,
        ...(query.state ? { state: query.state } : {}),
        ...(query.kind ? { kind: query.kind } : {}),
        ...(owner !== undefined ? { owner } : {}),
        ...(query.cursor !== undefined ? { cursor: query.cursor } : {}),
      });
    } catch (e) {
      if (e instanceof RangeError) throw new ApiError(400, "bad-request", `cursor: ${e.message}`);
      throw e;
    }
  });

  app.get<{ Params: { id: string } }>("/v1/jobs/:id", authenticated, async (request) => {
    return visibleJob(store, request.principal!, request.params.id);
  });

  app.delete<{ Params: { id: string } }>("/v1/jobs/:id", authenticated, async (request, reply) => {
    request.audit = { action: "cancel", job: request.params.id };
    const job = await visibleJob(store, request.principal!, request.params.id);
    request.audit = { action: "cancel", job: job.id, kind: job.kind };
    const cancelled = (await store.requestCancel(job.id)) ?? job;
    request.audit = { ...request.audit, outcome: cancelled.state === "cancelled" ? "cancelled" : "cancel-requested" };
    return reply.code(202).send(cancelled);
  });

  app.get<{ Params: { id: string } }>("/v1/jobs/:id/events", authenticated, async (request, reply) => {
    const job = await visibleJob(store, request.principal!, request.params.id);
    const query = parse(EventsQuerySchema, request.query, "bad-request", "the query");
    const after = resumePoint(request.headers["last-event-id"], query.after);
    if (after === undefined) throw new ApiError(400, "bad-request", "Last-Event-ID: not an event number");
    const gone = new AbortController();
    const stop = () => gone.abort();
    reply.raw.on("close", stop);
    options.closing.addEventListener("abort", stop, { once: true });
    reply.hijack();
    try {
      await streamJobEvents(reply.raw, {
        store,
        jobId: job.id,
        after,
        pollMs: options.eventPollMs,
        heartbeatMs: options.heartbeatMs,
        signal: gone.signal,
      });
    } catch (e) {
      request.log.error({ err: e, job: job.id }, "event stream failed");
      reply.raw.destroy();
    } finally {
      options.closing.removeEventListener("abort", stop);
    }
  });
}

/** The job when `principal` may see it; 404 otherwise, the same answer as for no job at all. */
async function visibleJob(store: JobStore, principal: Principal, id: string): Promise<ServiceJob> {
  const job = JobIdSchema.safeParse(id).success ? await store.get(id) : undefined;
  if (!job || (!principal.admin && job.owner !== principal.name))
    throw new ApiError(404, "not-found", `no job ${JSON.stringify(id)}`);
  return job;
}

function parse<T extends z.ZodType>(schema: T, value: unknown, code: string, what: string): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new ApiError(400, code, `${what} is not valid:\n${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

function idempotencyKey(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  const parsed = IdempotencyKeySchema.safeParse(Array.isArray(header) ? header.join(",") : header);
  if (!parsed.success) throw new ApiError(400, "bad-request", "Idempotency-Key: at most 200 visible ASCII characters");
  return parsed.data;
}

async function checkPaths(spec: JobSpec, folders: AllowedFolders): Promise<void> {
  try {
    await checkJobPaths(spec, folders);
  } catch (e) {
    if (e instanceof PathNotAllowedError) throw new ApiError(400, "path-not-allowed", e.message);
    throw e;
  }
}
