/**
 * The base of every error chromogenic throws on purpose, in the bottom layer so that every layer (formats,
 * guest, operations, providers, workflows, cli) extends the one class. Callers test `code`, a stable string
 * from ERROR_CODES, never the message; docs/ERRORS.md says what each code means (a test holds the two lists
 * together). The CLI turns a code into its exit status through the same table.
 */

/** Every code, with the CLI's exit status for it: 2 a usage error, 130 cancelled, 1 any other failure. */
export const ERROR_CODES = {
  EUSAGE: 2,
  EABORTED: 130,
  ECORRUPT: 1,
  EUNSUPPORTED: 1,
  EUNREADABLEFORMAT: 1,
  EREFUSED: 1,
  ENOENT: 1,
  EREMOTE: 1,
  ECHANGED: 1,
  EINUSE: 1,
  ENOSPC: 1,
  ETRANSFER: 1,
  EVERIFY: 1,
  EWAIT: 1,
  ESTORE: 1,
  ECONFIG: 1,
  ECLOUD: 1,
  EAUTH: 1,
  ENOENDPOINT: 1,
  EIMPORT: 1,
  EGUEST: 1,
  EGUESTPATH: 1,
  ENOROOT: 1,
  ENOTBOOTABLE: 1,
  EINTERNAL: 1,
} as const satisfies Record<string, number>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class ChromogenicError extends Error {
  constructor(
    message: string,
    readonly code: ErrorCode,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad user input: an unknown format, a bad option value, a missing argument, a request that contradicts itself. */
export class UsageError extends ChromogenicError {
  constructor(message: string) {
    super(message, "EUSAGE");
  }
}

/** The operation was cancelled (Ctrl-C, SIGTERM, an AbortSignal). */
export class AbortedError extends ChromogenicError {
  constructor(message = "operation cancelled") {
    super(message, "EABORTED");
  }
}

/**
 * Bytes that should have arrived did not: a download or upload ended short, a peer stopped reading. The work
 * may be retried (a job resumes where it stopped).
 */
export class TransferError extends ChromogenicError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, "ETRANSFER", options);
  }
}

/** Data that was moved does not match what its source recorded (a size or a digest): nothing is kept. */
export class VerificationError extends ChromogenicError {
  constructor(message: string) {
    super(message, "EVERIFY");
  }
}

/** Something waited for (an image becoming active) failed, vanished or ran past its time limit. */
export class WaitFailedError extends ChromogenicError {
  constructor(message: string) {
    super(message, "EWAIT");
  }
}

/** An error raised by the operating system (Node's `ErrnoException`): it keeps its errno name as its code. */
function systemErrorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

/**
 * The stable code of anything thrown: a ChromogenicError's own, EABORTED for the AbortError an AbortSignal
 * raises, the errno name of a system error (ENOENT, EACCES, …), and EINTERNAL for anything else, a bug to report.
 */
export function errorCode(error: unknown): string {
  if (error instanceof ChromogenicError) return error.code;
  if ((error as { name?: unknown } | null)?.name === "AbortError") return "EABORTED";
  return systemErrorCode(error) ?? "EINTERNAL";
}

/** The CLI's exit status for `error`: ERROR_CODES' entry for its code, 1 for a system error. */
export function exitStatus(error: unknown): number {
  const code = errorCode(error);
  return Object.hasOwn(ERROR_CODES, code) ? ERROR_CODES[code as ErrorCode] : 1;
}
