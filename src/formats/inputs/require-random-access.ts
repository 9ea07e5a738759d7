import { UsageError } from "../errors.js";
import type { ImageInput } from "./image-input.js";

/** A format that needs random access was asked to read an input that can only be read once in order. */
export class RandomAccessRequiredError extends UsageError {
  constructor(
    message: string,
    /** What needed random access, as the message names it ("qcow2", "monolithicSparse VMDK"). */
    readonly format: string,
  ) {
    super(message);
  }
}

/**
 * Refuses an input that can only be read once in order (a pipe) for a format whose tables point anywhere in
 * the file, saying what to do instead.
 */
export function requireRandomAccess(input: ImageInput, format: string): void {
  if (!input.sequential) return;
  throw new RandomAccessRequiredError(
    `${input.path}: a ${format} image needs random access, and this input can only be read once in order; ` +
      "save it to a file (or serve it over HTTP with Range requests) and read it from there",
    format,
  );
}
