import { resolve } from "node:path";
import type { ReferencePolicy } from "../formats/types.js";

/** The reference policy of `--allow-reference PATH...`: exactly the paths named, made absolute. */
export function allowedReferences(paths: readonly string[] | undefined): ReferencePolicy {
  return { allowedPaths: (paths ?? []).map((p) => resolve(p)) };
}
