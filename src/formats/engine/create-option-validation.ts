/**
 * Create options checked against a driver's schema before any byte is written, refused as one UsageError that
 * names the format and every problem: unknown keys with the keys it knows, bad values with what they should be.
 */
import type * as z from "zod";
import type { CreateOptions, CreateOptionsSchema } from "../types.js";
import { UsageError } from "../errors.js";

/**
 * The options `format`'s schema (loaded by `load`) makes of `options`. No options need no schema: every schema
 * turns `{}` into `{}` (test/formats/create-options.test.ts), so zod is loaded only when there is something to
 * check.
 */
export async function validateCreateOptions<S extends CreateOptionsSchema>(
  format: string,
  load: () => Promise<S>,
  options: CreateOptions,
): Promise<z.output<S>> {
  if (Object.keys(options).length === 0) return {} as z.output<S>;
  const schema = await load();
  const result = schema.safeParse(options);
  if (result.success) return result.data;
  const known = Object.keys(schema.shape);
  // Unknown keys first: a misspelt key explains why its value was not taken either.
  const issues = result.error.issues.toSorted(
    (a, b) => Number(b.code === "unrecognized_keys") - Number(a.code === "unrecognized_keys"),
  );
  const problems = issues.map((issue) => {
    if (issue.code === "unrecognized_keys") {
      const accepted = known.length ? `known: ${known.join(", ")}` : `${format} takes none`;
      return `unknown option(s) ${issue.keys.join(", ")} (${accepted})`;
    }
    const key = issue.path[0];
    return typeof key === "string" ? `${key}=${String(options[key])} ${issue.message}` : issue.message;
  });
  throw new UsageError(`${format}: ${problems.join("; ")}`);
}
