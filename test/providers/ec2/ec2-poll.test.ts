/**
 * The polling under every EC2 wait: progress reported on change, the limit, cancellation, and the undo step
 * (`onGiveUp`: the Cancel* call of a task) run whenever the wait ends without the thing done.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { pollUntilDone, type PollStep } from "../../../src/providers/ec2/ec2-poll.js";
import { ChromogenicError } from "../../../src/util/errors.js";

/** A step that answers from a script of states, then throws or ends as told. */
function scripted(states: readonly string[], end: "done" | Error) {
  let n = 0;
  return async (): Promise<PollStep<string>> => {
    const state = states[n++];
    if (state !== undefined) return { done: false, state, progress: String(n * 10) };
    if (end === "done") return { done: true, value: "the value" };
    throw end;
  };
}

test("progress is reported when it changes, and the value returned", async () => {
  const seen: string[] = [];
  let undone = 0;
  const value = await pollUntilDone("task t-1", scripted(["active", "active", "converting"], "done"), {
    timeoutMs: 5000,
    intervalMs: 1,
    onProgress: (s, p) => seen.push(`${s} ${p}`),
    onGiveUp: async () => void undone++,
  });
  assert.equal(value, "the value");
  assert.deepEqual(seen, ["active 10", "active 20", "converting 30"]);
  assert.equal(undone, 0, "nothing undone when the thing is done");
});

test("a Describe that fails, the limit and a cancellation each run the undo step; its own failure is not raised", async () => {
  let undone = 0;
  const onGiveUp = async () => {
    undone++;
    throw new Error("the cancel failed too");
  };
  const throttled = new ChromogenicError("EC2 refused DescribeExportImageTasks: RequestLimitExceeded", "ECLOUD");
  await assert.rejects(
    pollUntilDone("task t-2", scripted(["active"], throttled), { timeoutMs: 5000, intervalMs: 1, onGiveUp }),
    throttled,
  );
  assert.equal(undone, 1);
  await assert.rejects(
    pollUntilDone("task t-3", scripted(Array(1000).fill("active"), "done"), {
      timeoutMs: 50,
      intervalMs: 20,
      onGiveUp,
    }),
    { code: "EWAIT", message: /^task t-3 is still active \(\d+%\) after 0 s \(the limit\)$/ },
  );
  assert.equal(undone, 2);
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 30);
  await assert.rejects(
    pollUntilDone("task t-4", scripted(Array(1000).fill("active"), "done"), {
      timeoutMs: 60_000,
      intervalMs: 10,
      signal: controller.signal,
      onGiveUp,
    }),
    { code: "EABORTED", message: "waiting for task t-4 was cancelled" },
  );
  assert.equal(undone, 3);
});
