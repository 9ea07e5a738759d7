/**
 * Polling an EC2 resource or task until it ends: one Describe call per round, a progress callback when what it
 * says changes, a time limit, and cancellation. Snapshots and AWS's export/import/store tasks all end this way;
 * what differs (the call, which states end it, what to undo on the way out) is the caller's `step`.
 *
 * Whenever the wait ends without the thing done — cancelled, at the limit, or a Describe call that failed
 * (throttled past the SDK's retries, credentials refused) — `onGiveUp` runs first (best effort: its own failure
 * is not raised over the reason for giving up), so a task AWS would otherwise finish for nobody — an export
 * writing to S3, an import making an AMI — is cancelled and nothing is left in the account. For a task that
 * ended failed by itself the cancel is refused by AWS and that refusal is ignored.
 */
import { setTimeout as delay } from "node:timers/promises";
import { AbortedError, WaitFailedError } from "../../util/errors.js";

/** What one round saw: the end (its value), or the state and progress it is still in. */
export type PollStep<T> =
  | { readonly done: true; readonly value: T }
  | { readonly done: false; readonly state: string; readonly progress?: string };

export interface PollOptions {
  /** Give up after this long (see ec2-wait-bounds.ts for bounds scaled to the size). */
  readonly timeoutMs: number;
  /** Between two rounds (default 5 s). */
  readonly intervalMs?: number;
  readonly signal?: AbortSignal;
  /** Called when the state or progress changes. */
  readonly onProgress?: (state: string, progress?: string) => void;
}

/**
 * Runs `step` until it says done. `what` names the thing for messages ("export task export-ami-… at EC2 URL").
 * A step throws its own error for a failed end; this raises WaitFailedError at the limit and AbortedError on
 * cancellation, after `onGiveUp`.
 */
export async function pollUntilDone<T>(
  what: string,
  step: (signal?: AbortSignal) => Promise<PollStep<T>>,
  options: PollOptions & { readonly onGiveUp?: () => Promise<void> },
): Promise<T> {
  const intervalMs = options.intervalMs ?? 5000;
  const started = Date.now();
  let last = "";
  let lastState = "unknown";
  const giveUp = async (error: Error): Promise<never> => {
    await options.onGiveUp?.().catch(() => undefined);
    throw error;
  };
  for (;;) {
    if (options.signal?.aborted) return giveUp(new AbortedError(`waiting for ${what} was cancelled`));
    let seen: PollStep<T>;
    try {
      seen = await step(options.signal);
    } catch (e) {
      if (options.signal?.aborted) return giveUp(new AbortedError(`waiting for ${what} was cancelled`));
      return giveUp(e as Error);
    }
    if (seen.done) return seen.value;
    const now = `${seen.state}\u0000${seen.progress ?? ""}`;
    if (now !== last) options.onProgress?.(seen.state, seen.progress);
    last = now;
    lastState = seen.progress ? `${seen.state} (${seen.progress}%)` : seen.state;
    const elapsed = Date.now() - started;
    if (elapsed + intervalMs > options.timeoutMs) {
      return giveUp(
        new WaitFailedError(`${what} is still ${lastState} after ${Math.round(elapsed / 1000)} s (the limit)`),
      );
    }
    try {
      await delay(intervalMs, undefined, { signal: options.signal });
    } catch {
      return giveUp(new AbortedError(`waiting for ${what} was cancelled`));
    }
  }
}
