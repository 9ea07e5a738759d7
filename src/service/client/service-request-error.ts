/**
 * The service answered a request with an error status: the sentence it gave, and a code the CLI reports as it
 * reports its own failures (docs/ERRORS.md) — a token refused is EAUTH, a request the service refused as
 * invalid is EUSAGE (nothing started), anything else (5xx, a proxy's page) EREMOTE.
 */
import { ChromogenicError, type ErrorCode } from "../../util/errors.js";

export class ServiceRequestError extends ChromogenicError {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message, codeOfStatus(status));
  }
}

function codeOfStatus(status: number): ErrorCode {
  if (status === 401 || status === 403) return "EAUTH";
  if (status === 404) return "ENOENT";
  if (status >= 400 && status < 500 && status !== 408 && status !== 429) return "EUSAGE";
  return "EREMOTE";
}

/** The sentence of an error answer: its JSON `error.message` or `message`, else its status line. */
export async function errorSentence(response: Response, what: string): Promise<string> {
  let detail = "";
  try {
    const text = (await response.text()).slice(0, 4096);
    try {
      const body = JSON.parse(text) as { error?: { message?: unknown } | string; message?: unknown };
      const message =
        typeof body.error === "object" && typeof body.error?.message === "string"
          ? body.error.message
          : typeof body.message === "string"
            ? body.message
            : typeof body.error === "string"
              ? body.error
              : undefined;
      detail = message ?? "";
    } catch {
      detail = /^[\x20-\x7e]{1,200}$/.test(text.trim()) ? text.trim() : "";
    }
  } catch {
    // the body could not be read: the status says enough
  }
  return `${what}: the service answered ${response.status}${detail ? ` (${detail})` : ` ${response.statusText}`}`.trim();
}
