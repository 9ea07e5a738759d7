import { UsageError } from "../errors.js";
import type { ImageInput } from "./image-input.js";

/**
 * Refuses an input that can only be read once in order (a pipe) for a format whose tables point anywhere in
 * the file, saying what to do instead.
 */
export function requireRandomAccess(input: ImageInput, format: string): void {
  if (!input.sequential) return;
  throw new UsageError(
    `${input.path}: a ${format} image needs random access, and this input can only be read once in order; ` +
      "save it to a file (or serve it over HTTP with Range requests) and read it from there",
  );
}
