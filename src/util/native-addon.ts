import { createRequire } from "node:module";
import { packageFile } from "./package-files.js";

/**
 * Loads `native/<name>.node` (built by scripts/build-native.sh), or returns null when it is not there or does
 * not load: every addon is optional, its callers have a slower pure-Node path.
 */
export function loadNativeAddon<T>(name: string): T | null {
  try {
    return createRequire(import.meta.url)(packageFile(`native/${name}.node`)) as T;
  } catch {
    return null;
  }
}
