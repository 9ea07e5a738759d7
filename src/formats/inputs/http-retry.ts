/**
 * When a failed GET of a remote image's bytes is sent again, and how long to wait first. A GET changes nothing
 * on the server, so every failure that may pass is worth another try: a connection that failed or dropped in
 * the middle of a body, 408, 429 and the 5xx statuses other than "not implemented" and "version not
 * supported". The server's Retry-After (seconds or an HTTP date) sets the wait when it sends one, capped so that
 * a server cannot park a conversion for hours; otherwise the waits double from a short first one, with jitter
 * so that parallel block requests do not come back in lockstep.
 */

export interface HttpRetryPolicy {
  /** Attempts in all, the first included. */
  readonly attempts: number;
  /** The first wait without a Retry-After; each further one doubles (±25 %). */
  readonly baseDelayMs: number;
  /** No wait is longer, whatever the server asks. */
  readonly maxDelayMs: number;
}

export const DEFAULT_HTTP_RETRY: HttpRetryPolicy = { attempts: 4, baseDelayMs: 250, maxDelayMs: 30_000 };

export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 599 && status !== 501 && status !== 505);
}

/** Network failure codes that no repetition mends: a name that does not resolve, a certificate that fails. */
const PERMANENT_CODE = /^(ENOTFOUND|ERR_INVALID_URL|ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_)/;

/** An error may wrap the socket's as `cause`, sometimes twice: any code down the chain decides. */
export function isPermanentNetworkError(error: unknown): boolean {
  let e = error;
  for (let depth = 0; depth < 5 && e instanceof Error; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && PERMANENT_CODE.test(code)) return true;
    e = e.cause;
  }
  return false;
}

/**
 * The wait a Retry-After header asks for, in ms: either delay-seconds or an HTTP date (RFC 9110 §10.2.3).
 * Undefined when the header is absent or unreadable; a date in the past means no wait.
 */
export function retryAfterMs(value: string | null | undefined, now = Date.now()): number | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** The wait before attempt `attempt + 1` (attempts count from 1). */
export function retryDelayMs(policy: HttpRetryPolicy, attempt: number, retryAfter?: string | null): number {
  const asked = retryAfterMs(retryAfter);
  if (asked !== undefined) return Math.min(asked, policy.maxDelayMs);
  const doubling = Math.min(policy.baseDelayMs * 2 ** (attempt - 1), policy.maxDelayMs);
  return doubling * (0.75 + Math.random() * 0.5);
}
