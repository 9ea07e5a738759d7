/**
 * When a failed call may be sent again, and how long to wait first. Only idempotent calls are retried (a
 * repeated POST could create a second image), and only on failures that say "try later" or that happened
 * before any reply: 408, 429, 502, 503, 504 and connection errors. A 500 is a server bug, not transient.
 */
import { retryAfterMs } from "../../formats/inputs/http-retry.js";

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  readonly maxAttempts: number;
  /** The first wait; each further wait doubles, with ±25 % jitter, capped at `maxDelayMs`. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 4, baseDelayMs: 250, maxDelayMs: 8000 };

const IDEMPOTENT_METHODS = new Set(["GET", "HEAD", "PUT", "DELETE", "OPTIONS"]);
const TRANSIENT_STATUSES = new Set([408, 429, 502, 503, 504]);
const TRANSIENT_ERROR_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_CLOSED",
]);

export function isIdempotent(method: string): boolean {
  return IDEMPOTENT_METHODS.has(method.toUpperCase());
}

export function isTransientStatus(status: number): boolean {
  return TRANSIENT_STATUSES.has(status);
}

/** fetch wraps the socket error as `cause` (sometimes twice); look down the chain for a known code. */
export function isTransientNetworkError(error: unknown): boolean {
  let e: unknown = error;
  for (let depth = 0; depth < 4 && e && typeof e === "object"; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && TRANSIENT_ERROR_CODES.has(code)) return true;
    if (e instanceof TypeError && e.message === "fetch failed" && !(e as { cause?: unknown }).cause) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * The wait before attempt `attempt + 1` (attempt counts from 1); honours a Retry-After in either of its forms
 * (RFC 9110 §10.2.3): a number of seconds, or an HTTP date (the wait is then until that moment).
 */
export function retryDelayMs(
  policy: RetryPolicy,
  attempt: number,
  retryAfter?: string | null,
  now: number = Date.now(),
): number {
  const asked = retryAfterMs(retryAfter, now);
  if (asked !== undefined) return Math.min(asked, policy.maxDelayMs);
  const exponential = Math.min(policy.baseDelayMs * 2 ** (attempt - 1), policy.maxDelayMs);
  return exponential * (0.75 + Math.random() * 0.5);
}
