/**
 * A job as the service keeps it: what was asked and by whom, where it stands, its progress as the last events
 * told it, and the library's saved state (job-state.ts) so that a worker on another host can resume it. One
 * record per job in the job store (job-store.ts); the API answers with it (without `workflowState`).
 */
import { z } from "zod";
import { JobSpecSchema } from "./job-spec.js";

export const SERVICE_JOB_STATES = ["queued", "running", "succeeded", "failed", "cancelled"] as const;
export type ServiceJobState = (typeof SERVICE_JOB_STATES)[number];

/** States a job never leaves. */
export function isFinished(state: ServiceJobState): boolean {
  return state === "succeeded" || state === "failed" || state === "cancelled";
}

export const JobProgressSchema = z.object({
  phase: z.string().describe("the phase the last progress event named"),
  bytes: z.number().describe("bytes done in that phase"),
  total: z.number().nullable().describe("the phase's total, when known"),
  bytesPerSecond: z.number().optional(),
  etaSeconds: z.number().optional(),
});

export const ServiceJobSchema = z
  .object({
    id: z.string(),
    kind: z.string(),
    spec: JobSpecSchema,
    owner: z.string().describe("the name of the token that submitted it"),
    state: z.enum(SERVICE_JOB_STATES),
    createdAt: z.string(),
    startedAt: z.string().optional(),
    finishedAt: z.string().optional(),
    /** A cancel was asked; the worker undoes the job's cloud leftovers as on Ctrl-C, then marks it cancelled. */
    cancelRequested: z.boolean(),
    attempts: z.number().int().describe("how many times a worker started it (more than one after a worker died)"),
    worker: z.string().optional().describe("the worker holding it"),
    progress: JobProgressSchema.optional(),
    result: z.record(z.string(), z.unknown()).optional(),
    error: z.object({ code: z.string(), message: z.string() }).optional(),
  })
  .meta({ title: "service job" });

export type JobProgress = z.infer<typeof JobProgressSchema>;
export type ServiceJob = z.infer<typeof ServiceJobSchema>;
