/**
 * A job store with some of its methods replaced, the rest its own: how the queueing and waking stores wrap the
 * real one. A Proxy rather than a class listing every method, so a method added to JobStore passes through.
 */
import type { JobStore } from "./job-store.js";

export function withOverrides(store: JobStore, overrides: Partial<JobStore>): JobStore {
  return new Proxy(store, {
    get(target, property) {
      if (Object.hasOwn(overrides, property)) return overrides[property as keyof JobStore];
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
