/**
 * The OpenAPI 3.1 document served at /openapi.json, built from the zod schemas the handlers validate with
 * (z.toJSONSchema through one registry, so shared schemas become components referenced by `$ref`). OpenAPI 3.1
 * schema objects are JSON Schema 2020-12, what zod writes by default.
 */
import { z } from "zod";
import { EventSchema } from "../../util/events.js";
import { JobSpecSchema } from "../job-spec.js";
import { ServiceJobSchema } from "../service-job.js";
import { ApiErrorBodySchema } from "./api-error.js";
import {
  EventsQuerySchema,
  HealthSchema,
  IdempotencyKeySchema,
  JobIdSchema,
  JobPageSchema,
  ListJobsQuerySchema,
} from "./api-schemas.js";

type JsonSchema = Record<string, unknown>;

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown) => ({ "application/json": { schema } });
const errorAnswer = (description: string) => ({ description, content: json(ref("Error")) });

const COMMON_ERRORS = {
  "401": errorAnswer("no token, or one the service does not know"),
  "429": {
    ...errorAnswer("too many requests from this token: wait as Retry-After says"),
    headers: { "Retry-After": { schema: { type: "integer" }, description: "seconds to wait" } },
  },
};

function componentSchemas(): Record<string, JsonSchema> {
  const registry = z.registry<{ id: string }>();
  registry.add(JobSpecSchema, { id: "JobSpec" });
  registry.add(ServiceJobSchema, { id: "ServiceJob" });
  registry.add(JobPageSchema, { id: "JobPage" });
  registry.add(EventSchema, { id: "Event" });
  registry.add(ApiErrorBodySchema, { id: "Error" });
  registry.add(HealthSchema, { id: "Health" });
  const { schemas } = z.toJSONSchema(registry, { uri: (id) => `#/components/schemas/${id}`, unrepresentable: "any" });
  // Each schema stands inside the document, not as a document of its own.
  return Object.fromEntries(
    Object.entries(schemas).map(([id, schema]) => {
      const { $schema: _dialect, $id: _id, ...rest } = schema as JsonSchema;
      return [id, rest];
    }),
  );
}

/** Query parameters from a zod object: one parameter per property, its schema the property's. */
function queryParameters(schema: z.ZodObject): JsonSchema[] {
  const objectSchema = z.toJSONSchema(schema, { io: "input" }) as {
    properties: Record<string, JsonSchema>;
    required?: string[];
  };
  return Object.entries(objectSchema.properties).map(([name, property]) => {
    const { description, ...rest } = property;
    return {
      name,
      in: "query",
      required: objectSchema.required?.includes(name) ?? false,
      ...(description ? { description } : {}),
      schema: rest,
    };
  });
}

function inlineSchema(schema: z.ZodType): JsonSchema {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema) as JsonSchema;
  return rest;
}

export function openApiDocument(version: string): JsonSchema {
  const jobId = { name: "id", in: "path", required: true, schema: inlineSchema(JobIdSchema) };
  const notFound = errorAnswer("no such job, or one of another owner");
  return {
    openapi: "3.1.0",
    info: {
      title: "chromogenic service",
      version,
      description:
        "Jobs of the chromogenic CLI (image create, export, migrate, convert, clean) run by the service's " +
        "workers. Every /v1 route and /metrics take `Authorization: Bearer TOKEN`.",
    },
    components: {
      schemas: componentSchemas(),
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
    },
    security: [{ bearer: [] }],
    paths: {
      "/v1/jobs": {
        post: {
          operationId: "submitJob",
          summary: "submit a job",
          parameters: [
            { name: "Idempotency-Key", in: "header", required: false, schema: inlineSchema(IdempotencyKeySchema) },
          ],
          requestBody: { required: true, content: json(ref("JobSpec")) },
          responses: {
            "201": { description: "the job, queued", content: json(ref("ServiceJob")) },
            "200": {
              description: "the job an earlier request with this Idempotency-Key made",
              content: json(ref("ServiceJob")),
            },
            "400": errorAnswer("malformed JSON, an unknown field, or a path outside the allowed folders"),
            "403": errorAnswer("the token may not run this kind of job or use a cloud it names"),
            "409": errorAnswer("the Idempotency-Key was used for another job"),
            "413": errorAnswer("the body is larger than the service takes"),
            "415": errorAnswer("the body is not application/json"),
            ...COMMON_ERRORS,
          },
        },
        get: {
          operationId: "listJobs",
          summary: "list jobs, newest first",
          parameters: queryParameters(ListJobsQuerySchema),
          responses: {
            "200": { description: "a page of jobs", content: json(ref("JobPage")) },
            "400": errorAnswer("a bad filter or cursor"),
            ...COMMON_ERRORS,
          },
        },
      },
      "/v1/jobs/{id}": {
        get: {
          operationId: "getJob",
          summary: "a job",
          parameters: [jobId],
          responses: {
            "200": { description: "the job", content: json(ref("ServiceJob")) },
            "404": notFound,
            ...COMMON_ERRORS,
          },
        },
        delete: {
          operationId: "cancelJob",
          summary: "cancel a job: a queued one at once, a running one by its worker, which removes its cloud leftovers",
          parameters: [jobId],
          responses: {
            "202": { description: "the job, cancelled or marked for its worker", content: json(ref("ServiceJob")) },
            "404": notFound,
            ...COMMON_ERRORS,
          },
        },
      },
      "/v1/jobs/{id}/events": {
        get: {
          operationId: "jobEvents",
          summary: "a job's events as server-sent events, then its end",
          description:
            "Each event is `id: <number>` and `data: <Event JSON>`. Reconnecting with the Last-Event-ID header " +
            "(or ?after=) sends only the events after it. Comments (`: keep-alive`) are sent while nothing " +
            "happens. When the job has finished and every event was sent, an `event: end` whose data is the " +
            "ServiceJob closes the stream.",
          parameters: [
            jobId,
            ...queryParameters(EventsQuerySchema),
            { name: "Last-Event-ID", in: "header", required: false, schema: { type: "string" } },
          ],
          responses: {
            "200": {
              description: "the event stream",
              content: {
                "text/event-stream": {
                  schema: { type: "string", description: "each message's data is an Event (x-event)" },
                  "x-event": ref("Event"),
                },
              },
            },
            "404": notFound,
            ...COMMON_ERRORS,
          },
        },
      },
      "/healthz": {
        get: {
          operationId: "health",
          summary: "whether the job store answers",
          security: [],
          responses: {
            "200": { description: "the store answered", content: json(ref("Health")) },
            "503": { description: "the store did not answer", content: json(ref("Health")) },
          },
        },
      },
      "/metrics": {
        get: {
          operationId: "metrics",
          summary: "Prometheus metrics: jobs by state, bytes moved, job and request durations",
          responses: {
            "200": { description: "Prometheus text format", content: { "text/plain": { schema: { type: "string" } } } },
            ...COMMON_ERRORS,
          },
        },
      },
      "/openapi.json": {
        get: {
          operationId: "openApi",
          summary: "this document",
          security: [],
          responses: { "200": { description: "OpenAPI 3.1", content: json({ type: "object" }) } },
        },
      },
      "/": {
        get: {
          operationId: "webPage",
          summary: "the web page (and its files below /)",
          security: [],
          responses: { "200": { description: "HTML", content: { "text/html": { schema: { type: "string" } } } } },
        },
      },
    },
  };
}
