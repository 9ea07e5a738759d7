/**
 * A job store that calls `wake` after each submission that made a job: what `serve` hands its API when its own
 * workers claim from the store, so that an idle worker starts a new job at once rather than at the end of its
 * back-off (up to 2 s: a job's time through the service would otherwise exceed the CLI's by that much). Every
 * other method is the store's own.
 */
import type { JobStore } from "./job-store.js";
import { withOverrides } from "./job-store-overrides.js";

export function wakingJobStore(store: JobStore, wake: () => void): JobStore {
  const submit: JobStore["submit"] = async (request) => {
    const answer = await store.submit(request);
    if (answer.created) wake();
    return answer;
  };
  return withOverrides(store, { submit });
}
