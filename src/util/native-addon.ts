import { createRequire } from "node:module";
import { packageFile } from "./package-files.js";

/** Each addon's load attempt, made once per process (null: not built here, or it did not load). */
const loaded = new Map<string, unknown>();

/**
 * Loads `native/<name>.node` (built by scripts/build-native.sh), or returns null when it is not there or does
 * not load: every addon is optional, its callers have a slower pure-Node path.
 */
export function loadNativeAddon<T>(name: string): T | null {
  if (!loaded.has(name)) {
    let addon: unknown = null;
    try {
      addon = createRequire(import.meta.url)(packageFile(`native/${name}.node`));
    } catch {
      // Not built (no compiler, headers or library when the project was set up): the fallback it is.
    }
    loaded.set(name, addon);
  }
  return loaded.get(name) as T | null;
}
