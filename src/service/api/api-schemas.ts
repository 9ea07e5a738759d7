/**
 * The API's own request and response shapes, beside the job's (job-spec.ts, service-job.ts) and the event's
 * (util/events.ts): zod schemas that the handlers validate with and openapi-document.ts turns into the
 * OpenAPI document, so what is documented is what is checked.
 */
import { z } from "zod";
import { JOB_KINDS, type JobKind } from "../job-spec.js";
import { SERVICE_JOB_STATES, ServiceJobSchema } from "../service-job.js";

export const MAX_PAGE = 200;

export const ListJobsQuerySchema = z
  .object({
    state: z.enum(SERVICE_JOB_STATES).optional().describe("only jobs in this state"),
    kind: z
      .enum(JOB_KINDS as [JobKind, ...JobKind[]])
      .optional()
      .describe("only jobs of this kind"),
    owner: z.string().max(64).optional().describe("only this token's jobs (an admin token; others see their own)"),
    limit: z.coerce.number().int().min(1).max(MAX_PAGE).default(50).describe(`jobs per page, at most ${MAX_PAGE}`),
    cursor: z.string().max(128).optional().describe("the `next` of the previous page"),
  })
  .strict();

export const JobPageSchema = z
  .object({
    jobs: z.array(ServiceJobSchema).describe("newest first"),
    next: z.string().optional().describe("present when there are more: pass it as `cursor`"),
  })
  .meta({ title: "page of jobs" });

export const JobIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/)
  .describe("the job's id");

export const EventsQuerySchema = z
  .object({
    after: z.coerce
      .number()
      .int()
      .min(0)
      .optional()
      .describe("send the events numbered above this (as the Last-Event-ID header does)"),
  })
  .strict();

export const IdempotencyKeySchema = z
  .string()
  .regex(/^[\x21-\x7e]{1,200}$/, "at most 200 visible ASCII characters")
  .describe("a client's name for this submission: a retry with the same key answers the same job");

export const HealthSchema = z.object({
  status: z.enum(["ok", "unavailable"]),
  jobs: z.record(z.string(), z.number()).optional().describe("jobs by state"),
});
