import { ChromogenicError } from "../util/errors.js";

/**
 * Reaching a guest, or letting go of it, failed on this host: a volume group that clashes with one of the
 * host's, a loop device another process holds, changes that could not all be undone (their journal is kept
 * for `chromogenic guest cleanup`).
 */
export class GuestAccessError extends ChromogenicError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, "EGUEST", options);
  }
}
