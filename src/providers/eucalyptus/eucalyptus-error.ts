/**
 * Errors of the Eucalyptus-only calls. A message names the service, the action and the endpoint, then the
 * cloud's own code and sentence, so a log line alone says what was refused and where; it never carries a
 * secret key, a signature or a request body (only the action's name and the reply's code and message are
 * quoted). Refused credentials get EAUTH, anything else from the cloud ECLOUD.
 */
import { ChromogenicError, type ErrorCode } from "../../util/errors.js";

/**
 * The codes a Query service answers when it does not accept the caller's credentials: AWS's common errors
 * (AuthFailure, SignatureDoesNotMatch, InvalidClientTokenId …) as Eucalyptus 4.4 also sends them.
 */
const AUTH_CODES = new Set([
  "AuthFailure",
  "SignatureDoesNotMatch",
  "InvalidAccessKeyId",
  "InvalidClientTokenId",
  "IncompleteSignature",
  "MissingAuthenticationToken",
  "AccessDenied",
  "UnauthorizedOperation",
  "RequestExpired",
]);

export interface EucalyptusCallContext {
  /** "bootstrap (Empyrean)", "compute", "configuration": the service as an administrator knows it. */
  readonly service: string;
  /** The Query action, e.g. "DescribeServices". */
  readonly action: string;
  /** The service URL the request went to. */
  readonly url: string;
}

export class EucalyptusError extends ChromogenicError {
  readonly service: string;
  readonly action: string;
  /** The cloud's error code (e.g. "InvalidInstanceID.NotFound"), when it sent one. */
  readonly cloudCode: string | undefined;
  readonly status: number | undefined;

  constructor(
    context: EucalyptusCallContext,
    detail: string,
    reply: { status?: number; cloudCode?: string } = {},
    options?: { cause?: unknown; code?: ErrorCode },
  ) {
    const status = reply.status === undefined ? "" : ` → HTTP ${reply.status}`;
    const cloudCode = reply.cloudCode === undefined ? "" : ` ${reply.cloudCode}`;
    const code = options?.code ?? (reply.cloudCode && AUTH_CODES.has(reply.cloudCode) ? "EAUTH" : "ECLOUD");
    super(
      `Eucalyptus ${context.service} ${context.action} at ${context.url}${status}${cloudCode}: ${detail}`,
      code,
      options,
    );
    this.service = context.service;
    this.action = context.action;
    this.cloudCode = reply.cloudCode;
    this.status = reply.status;
  }
}
