/**
 * The one event schema of every command and every phase: what the library hands its listeners (convertFile's
 * `onProgress`, a job's `onEvent`, cleanImage's `onProgress`) and what the CLI prints with --json, one event
 * per line. Written once, as zod schemas: the TypeScript types below are inferred from them, the JSON Schema
 * in docs/events.schema.json is generated from them (scripts/write-event-schema.mjs; a test fails when the two
 * differ), and the tests validate every --json line of every command against them.
 *
 * Code that only emits or prints events imports the types (`import type`), so zod loads only where a schema is
 * used: in the tests and the generator, never in a conversion's start-up.
 */
import { z } from "zod";

/** What a step of the work is doing; a job's phases come in this order, a command runs the ones it needs. */
export const PHASES = [
  "snapshot-wait",
  "download",
  "convert",
  "copy",
  "attach",
  "clean",
  "commit",
  "boot",
  "upload",
  "import",
  "verify",
] as const;

/** The commands whose result ends a --json run (a `done` event's `command`). */
export const COMMANDS = [
  "info",
  "convert",
  "export",
  "formats",
  "clouds",
  "demo",
  "inspect",
  "clean",
  "bootable",
  "image create",
  "image list",
  "image upload",
  "jobs rm",
  "jobs prune",
  "jobs cancel",
  "migrate",
  "resume",
  "jobs",
  "bundle",
  "unbundle",
] as const;

const phase = z
  .enum(PHASES)
  .describe(
    "snapshot-wait: an instance's snapshot being saved; download: bytes received; convert: a disk read and " +
      "rewritten in another format; copy: a guest's filesystems copied into a new disk's partitions; attach: a " +
      "guest's disk attached and mounted; clean: cleaning operations run; commit: a working copy (cleaned, or " +
      "made bootable) written out; boot: a boot loader written into a disk and its guest; upload: bytes sent; " +
      "import: the store importing what was sent; verify: the result checked against its source",
  );
const job = z
  .string()
  .min(1)
  .describe("the job's id: present in the events of a job (image create, export --cloud, migrate, resume)");
const count = z.number().int().nonnegative();
const seconds = z.number().nonnegative();

export const ProgressEventSchema = z
  .strictObject({
    event: z.literal("progress"),
    job: job.optional(),
    phase,
    bytes: count.describe(
      "data bytes the phase has moved so far: read from the source's data (never its holes or zero ranges) " +
        "while converting, received while downloading, sent while uploading; a resumed download counts what " +
        "earlier runs received",
    ),
    total: count
      .nullable()
      .describe(
        "data bytes the phase moves in all, null while unknown (a disk read from a pipe, a snapshot being saved)",
      ),
    position: count.optional().describe("in a phase that walks a disk: how far into it the walk is, holes included"),
    virtualSize: count.optional().describe("in a phase that walks a disk: the disk's size"),
    rate: seconds.describe("bytes per second, data bytes over the phase's time so far (this run's bytes only)"),
    elapsed: seconds.describe("seconds since the phase started"),
    eta: seconds
      .nullable()
      .describe("seconds left, from the data still to move at `rate`; null while the total or the rate is unknown"),
  })
  .describe("how far a phase is: emitted at most a few times a second, and once when the phase completes");

export const PhaseEventSchema = z
  .strictObject({
    event: z.literal("phase"),
    job: job.optional(),
    phase,
    state: z.enum(["start", "end"]),
    detail: z
      .string()
      .optional()
      .describe('what the phase does or did, for people ("qcow2 → raw, streamed into the upload")'),
  })
  .describe("a phase starts or ends");

export const StepEventSchema = z
  .strictObject({
    event: z.literal("step"),
    job: job.optional(),
    phase,
    name: z.string().min(1).describe("the step, e.g. a cleaning operation's name"),
    index: z.number().int().positive().describe("its number, from 1"),
    count: z.number().int().positive().describe("how many steps the phase runs"),
  })
  .describe("a phase made of named steps (cleaning's operations) starts its next one");

export const MessageEventSchema = z
  .strictObject({
    event: z.literal("message"),
    job: job.optional(),
    level: z.enum(["info", "warning"]),
    text: z.string(),
  })
  .describe("something the user should know; a warning is something the command let pass (it still succeeds)");

export const JobEventSchema = z
  .strictObject({ event: z.literal("job"), job })
  .describe("a job's id exists: from now on an interrupted run can be resumed with `chromogenic resume ID`");

export const DoneEventSchema = z
  .looseObject({
    event: z.literal("done"),
    command: z.enum(COMMANDS).describe("the command that succeeded"),
  })
  .describe("the last line of a run that succeeded: the command's result, its fields beside `event` and `command`");

export const ErrorEventSchema = z
  .strictObject({
    event: z.literal("error"),
    job: job.optional(),
    code: z
      .string()
      .regex(/^E[A-Z0-9]+$/)
      .describe("the stable code (docs/ERRORS.md): a ChromogenicError's, or a system call's errno name"),
    message: z.string().min(1).describe("the sentence also written to standard error"),
    exitCode: z.number().int().positive().describe("the status the command exits with"),
  })
  .describe("the last line of a run that failed, written before the command exits");

export const EventSchema = z
  .discriminatedUnion("event", [
    ProgressEventSchema,
    PhaseEventSchema,
    StepEventSchema,
    MessageEventSchema,
    JobEventSchema,
    DoneEventSchema,
    ErrorEventSchema,
  ])
  .meta({
    title: "chromogenic event",
    description:
      "One line of `chromogenic … --json` output, and what the library hands its event listeners. A run " +
      "prints events as they happen and ends with exactly one `done` or `error` event.",
  });

export type Phase = (typeof PHASES)[number];
export type CommandName = (typeof COMMANDS)[number];
export type ProgressEvent = Readonly<z.infer<typeof ProgressEventSchema>>;
export type PhaseEvent = Readonly<z.infer<typeof PhaseEventSchema>>;
export type StepEvent = Readonly<z.infer<typeof StepEventSchema>>;
export type MessageEvent = Readonly<z.infer<typeof MessageEventSchema>>;
export type JobEvent = Readonly<z.infer<typeof JobEventSchema>>;
export type DoneEvent = Readonly<z.infer<typeof DoneEventSchema>>;
export type ErrorEvent = Readonly<z.infer<typeof ErrorEventSchema>>;
export type ChromogenicEvent = Readonly<z.infer<typeof EventSchema>>;

/** The events of the work itself, what the library's listeners receive; `job`, `done` and `error` are the CLI's. */
export type WorkEvent = ProgressEvent | PhaseEvent | StepEvent | MessageEvent;

export type ProgressListener = (event: ProgressEvent) => void;
export type WorkListener = (event: WorkEvent) => void;

/** The JSON Schema (draft 2020-12) of one event, as docs/events.schema.json holds it. */
export function eventJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(EventSchema, { target: "draft-2020-12" });
}
