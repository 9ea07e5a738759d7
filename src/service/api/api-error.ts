/**
 * Every answer the API refuses has one shape, `{"error": {"code", "message"}}`, with a stable lowercase code a
 * client can test (the message may be reworded). The OpenAPI document describes the same shape.
 */
import { z } from "zod";

export const ApiErrorBodySchema = z
  .object({
    error: z.object({
      code: z
        .string()
        .describe(
          "bad-request, bad-json, invalid-job, path-not-allowed, unauthorized, forbidden, not-found, " +
            "idempotency-conflict, body-too-large, unsupported-media-type, rate-limited, unavailable, internal",
        ),
      message: z.string(),
    }),
  })
  .meta({ title: "error" });

export type ApiErrorBody = z.infer<typeof ApiErrorBodySchema>;

export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export function errorBody(code: string, message: string): ApiErrorBody {
  return { error: { code, message } };
}

/** The code and status for anything a request handler or fastify threw. */
export function describeError(error: unknown): { statusCode: number; code: string; message: string } {
  if (error instanceof ApiError) return { statusCode: error.statusCode, code: error.code, message: error.message };
  const e = error as { statusCode?: number; code?: string; message?: string };
  const statusCode = typeof e.statusCode === "number" && e.statusCode >= 400 ? e.statusCode : 500;
  const message = e.message ?? String(error);
  switch (e.code) {
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return { statusCode: 415, code: "unsupported-media-type", message: "send the body as application/json" };
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return { statusCode: 413, code: "body-too-large", message };
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      return { statusCode: 400, code: "bad-json", message };
  }
  if (statusCode === 429) return { statusCode, code: "rate-limited", message };
  if (statusCode === 400 && error instanceof SyntaxError) return { statusCode, code: "bad-json", message };
  if (statusCode < 500) return { statusCode, code: "bad-request", message };
  return { statusCode, code: "internal", message: "the service failed to answer; its log says why" };
}
