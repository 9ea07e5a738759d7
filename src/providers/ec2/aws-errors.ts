/**
 * Errors of the EC2-family clients (S3, EC2 and the EBS direct APIs through the AWS SDK v3). Every failure becomes one sentence that
 * says which service at which URL refused which call on what (a bucket and key, an image id), with the server's
 * own error code, its message, the HTTP status and the request id when there is one — enough for a log line to
 * be reported to the cloud's operators. A message never carries a secret: the SDK's error objects hold the
 * string-to-sign and the canonical request of a refused signature, and those are never quoted; only the code
 * and message the server wrote are, and the secret key is scrubbed from them should a server echo it.
 */
import { AbortedError, ChromogenicError, type ErrorCode } from "../../util/errors.js";

export type AwsService = "S3" | "EC2" | "EBS";

/** What was being done, for the message: the service, its URL, the API call and its object. */
export interface AwsCallContext {
  readonly service: AwsService;
  /** The endpoint as configured (s3Url, ec2Url). */
  readonly endpoint: string;
  /** The API action, e.g. "GetObject", "RegisterImage". */
  readonly call: string;
  /** What it was about, e.g. "s3://bucket/key", "image emi-12345678"; empty when nothing in particular. */
  readonly subject?: string;
  /** A sentence added when the server's code is one of these (e.g. the ACL hint for InvalidArgument). */
  readonly hints?: Readonly<Record<string, string>>;
  /** Values that must never appear in a message (the secret key, a session token). */
  readonly secrets?: readonly string[];
}

/** A call to S3 or EC2 failed: refused (with the server's code), or the server could not be reached. */
export class AwsServiceError extends ChromogenicError {
  readonly service: AwsService;
  readonly call: string;
  /** The server's error code (NoSuchKey, InvalidAMIID.NotFound, …), when it answered with one. */
  readonly awsCode: string | undefined;
  readonly status: number | undefined;
  readonly requestId: string | undefined;

  constructor(
    message: string,
    code: ErrorCode,
    fields: { service: AwsService; call: string; awsCode?: string; status?: number; requestId?: string },
    options?: { cause?: unknown },
  ) {
    super(message, code, options);
    this.service = fields.service;
    this.call = fields.call;
    this.awsCode = fields.awsCode;
    this.status = fields.status;
    this.requestId = fields.requestId;
  }
}

/** Server codes that mean the credentials or their rights were refused. */
const AUTH_CODES = new Set([
  "SignatureDoesNotMatch",
  "InvalidAccessKeyId",
  "AuthFailure",
  "InvalidClientTokenId",
  "AccessDenied",
  "AccessDeniedException",
  "UnauthorizedOperation",
  "ExpiredToken",
  "InvalidToken",
  "RequestTimeTooSkewed",
  "OptInRequired",
]);

/** Server codes that mean the thing asked for is not there. */
function isNotFound(awsCode: string | undefined, status: number | undefined): boolean {
  if (awsCode && /(^NoSuch|NotFound$|\.NotFound$|^NotFound)/.test(awsCode)) return true;
  return awsCode === undefined && status === 404;
}

interface SdkErrorShape {
  name?: unknown;
  message?: unknown;
  Code?: unknown;
  code?: unknown;
  $metadata?: { httpStatusCode?: number; requestId?: string; extendedRequestId?: string };
  $response?: { statusCode?: number; headers?: Record<string, string> };
  cause?: unknown;
}

/** The AbortError an AbortSignal or the SDK raises when a call is cancelled. */
export function isAbort(error: unknown, signal?: AbortSignal): boolean {
  if (signal?.aborted) return true;
  const name = (error as SdkErrorShape | null)?.name;
  return name === "AbortError" || (error instanceof ChromogenicError && error.code === "EABORTED");
}

/**
 * `error` (anything the SDK threw) as an AwsServiceError, or an AbortedError when the call was cancelled.
 * A ChromogenicError passes through unchanged: it was raised by our own code with its own sentence.
 */
export function awsError(error: unknown, context: AwsCallContext, signal?: AbortSignal): ChromogenicError {
  if (error instanceof ChromogenicError) return error;
  const about = context.subject ? ` ${context.subject}` : "";
  if (isAbort(error, signal)) return new AbortedError(`${context.service} ${context.call}${about} was cancelled`);
  const e = (error ?? {}) as SdkErrorShape;
  const status = e.$metadata?.httpStatusCode ?? e.$response?.statusCode;
  const requestId = e.$metadata?.requestId ?? e.$response?.headers?.["x-amz-request-id"];
  const where = `${context.service} at ${context.endpoint}`;
  const scrub = (text: string) =>
    (context.secrets ?? []).filter((s) => s.length >= 4).reduce((t, s) => t.split(s).join("***"), text);
  if (status === undefined) {
    // No HTTP answer: a connection refused, a TLS failure, a timeout, a reply the SDK could not parse.
    return new AwsServiceError(
      scrub(`${where} could not be reached for ${context.call}${about}: ${describeCauses(error)}`),
      "ECLOUD",
      { service: context.service, call: context.call },
      { cause: error },
    );
  }
  const awsCode = typeof e.Code === "string" ? e.Code : typeof e.name === "string" ? e.name : undefined;
  // The SDK names a reply without an error body (a HEAD's) "Unknown"/"UnknownError": no code at all.
  const meaningless = new Set(["Error", "Unknown", "UnknownError", "NotFound", "Forbidden"]);
  const usefulCode = awsCode && !meaningless.has(awsCode) ? awsCode : undefined;
  const message = typeof e.message === "string" ? e.message : "";
  const text = message && message !== usefulCode && !meaningless.has(message) ? message : "";
  // A 401/403 without a body (a HEAD's reply) is as likely a wrong secret as a missing right: say both.
  const bare =
    status === 401 || status === 403
      ? "access denied, the reply giving no reason (a wrong access key or secret key, a wrong signing region, " +
        "or no rights to it)"
      : "no error code in the reply";
  const detail = [usefulCode, text].filter(Boolean).join(": ") || bare;
  const facts = [`HTTP ${status}`, requestId && `request ${requestId}`].filter(Boolean).join(", ");
  const hint = usefulCode ? context.hints?.[usefulCode] : undefined;
  const sentence = `${where} refused ${context.call}${about}: ${detail} (${facts})${hint ? `. ${hint}` : ""}`;
  // A refusal without a body (HEAD) has only its status to say what it was.
  const refused = usefulCode ? AUTH_CODES.has(usefulCode) : status === 401 || status === 403;
  const code: ErrorCode = refused ? "EAUTH" : isNotFound(usefulCode, status) ? "ENOENT" : "ECLOUD";
  return new AwsServiceError(
    scrub(sentence),
    code,
    { service: context.service, call: context.call, awsCode: usefulCode, status, requestId },
    { cause: error },
  );
}

/** An error's message and its causes' messages, each with its errno-style code, as one line. */
function describeCauses(error: unknown): string {
  const parts: string[] = [];
  let c: unknown = error;
  for (let i = 0; i < 4 && c instanceof Error; i++) {
    const code = (c as { code?: unknown }).code;
    const text = c.message || c.name;
    if (!parts.includes(text))
      parts.push(typeof code === "string" && !text.includes(code) ? `${text} (${code})` : text);
    c = (c as { cause?: unknown }).cause;
  }
  return parts.join(": ") || String(error);
}
