/**
 * What a client may ask the service to run: the CLI's jobs, with the CLI's options, as one zod schema that
 * validates `POST /v1/jobs` bodies, generates the OpenAPI document's request schema and types the code. The
 * three cloud jobs (`image-create`, `export`, `migrate`) are the library's JobRequest itself (job-state.ts), so a
 * job submitted here and one started by `chromogenic migrate` carry the same saved state and events; the file
 * jobs (`convert`, `clean`) name their files, which the service checks against its allowed folders
 * (service-paths.ts) before anything starts. Unknown fields are refused, not ignored: a misspelt option must
 * not silently run a different job.
 */
import { z } from "zod";
import { JobRequestSchema } from "../workflows/job-state.js";

const requestShape = JobRequestSchema.shape;

/**
 * The JobRequest's fields with every nested object strict too: zod drops unknown keys of a plain object, so a
 * `source.password` would vanish unseen instead of being refused (credentials never travel through the API).
 */
const strictRequestShape = {
  ...requestShape,
  source: requestShape.source.strict(),
  destination: z.discriminatedUnion(
    "kind",
    requestShape.destination.options.map((option) => option.strict()) as unknown as [
      (typeof requestShape.destination.options)[0],
      (typeof requestShape.destination.options)[1],
    ],
  ),
  clean: requestShape.clean.unwrap().strict().optional(),
  bootable: requestShape.bootable.unwrap().strict().optional(),
};

/** A cloud job: the JobRequest fields with `kind` fixed, every object strict. */
function cloudJob<K extends "image-create" | "export" | "migrate">(kind: K, description: string) {
  return z
    .object({
      ...strictRequestShape,
      kind: z.literal(kind),
    })
    .strict()
    .describe(description);
}

export const ConvertJobSpecSchema = z
  .object({
    kind: z.literal("convert"),
    input: z.string().min(1).describe("the disk to read: a path inside the service's allowed folders"),
    output: z.string().min(1).describe("the file to write: a path inside the service's allowed folders"),
    format: z.string().min(1).describe("the output's format (`chromogenic formats`)"),
    options: z.record(z.string(), z.string()).optional().describe("the output format's -o options, by name"),
  })
  .strict()
  .describe("convert a disk file into another format (`chromogenic convert`)");

export const CleanJobSpecSchema = z
  .object({
    kind: z.literal("clean"),
    input: z.string().min(1).describe("the disk to clean: a path inside the service's allowed folders"),
    output: z.string().min(1).describe("the cleaned copy: a path inside the service's allowed folders"),
    profile: z.string().optional().describe("a cleaning profile's name (`chromogenic clean --list-profiles`)"),
    operations: z.string().optional().describe("operations to run, as `clean --operations`"),
  })
  .strict()
  .describe("clean a disk file into a new one (`chromogenic clean`)");

export const JobSpecSchema = z
  .discriminatedUnion("kind", [
    cloudJob("image-create", "make an image of an instance (`chromogenic image create`)"),
    cloudJob("export", "export an image or an instance to a file (`chromogenic export`)"),
    cloudJob("migrate", "copy an image or an instance's snapshot between stores (`chromogenic migrate`)"),
    ConvertJobSpecSchema,
    CleanJobSpecSchema,
  ])
  .meta({ title: "job", description: "a job the service runs, as the CLI command of the same name would" });

export type JobSpec = z.infer<typeof JobSpecSchema>;
export type JobKind = JobSpec["kind"];
export const JOB_KINDS: readonly JobKind[] = ["image-create", "export", "migrate", "convert", "clean"];

/** The clouds a job names (its source's and a cloud destination's): what a token must allow, a worker reach. */
export function jobClouds(spec: JobSpec): string[] {
  if (spec.kind === "convert" || spec.kind === "clean") return [];
  return [spec.source.cloud, ...(spec.destination.kind === "cloud" ? [spec.destination.cloud] : [])];
}
