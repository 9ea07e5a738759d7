import type { DistributionFamily } from "../../guest/inspect/distribution.js";
import { defineOperation, type CleaningOperation } from "./cleaning-operation.js";

/** The shape most virt-sysprep operations have: remove what some globs match (and empty some files in place). */
export function globOperation(spec: {
  name: string;
  description: string;
  defaultEnabled: boolean;
  families?: readonly DistributionFamily[] | "all";
  remove: readonly string[];
  truncate?: readonly string[];
}): CleaningOperation {
  return defineOperation({
    name: spec.name,
    description: spec.description,
    defaultEnabled: spec.defaultEnabled,
    families: spec.families ?? "all",
    async perform(ctx) {
      await ctx.removeGlobs(spec.remove);
      await ctx.truncateGlobs(spec.truncate ?? []);
    },
  });
}
