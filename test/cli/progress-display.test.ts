/**
 * The progress line fits the terminal: a line wider than the terminal wraps, and `\r` then redraws only its
 * last row, so each update would leave a row behind (issue 15 saw it at 60 columns).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { fitLine, renderProgress } from "../../src/cli/progress-display.js";
import type { ProgressEvent } from "../../src/util/events.js";

const event = {
  event: "progress",
  phase: "convert",
  bytes: 123_456_789_012,
  total: 987_654_321_098,
  rate: 456_789_012,
  elapsed: 12.3,
  eta: 3456,
} as unknown as ProgressEvent;

test("the progress line is never wider than the terminal less one column, and keeps the bar when it fits", () => {
  for (const columns of [20, 40, 60, 72, 80, 100, 200]) {
    const line = renderProgress(event, columns);
    assert.ok(line.length <= columns - 1, `${columns} columns: ${line.length} characters: ${line}`);
  }
  assert.match(renderProgress(event, 120), /\[#+-+\]/);
  assert.match(renderProgress(event, 60), /^convert +12\.5%/);
  assert.equal(fitLine("clean step-name (3/12)", 10), "clean ste");
});
