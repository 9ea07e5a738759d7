/**
 * Reading a `--json` run's stdout as the event schema promises it (src/util/events.ts, docs/events.schema.json):
 * one event per line, each valid against the schema, the run ending with exactly one `done` or `error` event.
 * Every test that reads --json output reads it through here, so every command's output is checked.
 */
import assert from "node:assert/strict";
import { EventSchema, type ChromogenicEvent, type DoneEvent, type ErrorEvent } from "../../src/util/events.js";

/** The events of a --json run's stdout, each checked against the schema; fails the test on any other line. */
export function eventLines(stdout: string): ChromogenicEvent[] {
  assert.ok(stdout.endsWith("\n"), `--json output ends with a line break: ${JSON.stringify(stdout.slice(-80))}`);
  const events = stdout
    .slice(0, -1)
    .split("\n")
    .map((line, i) => {
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        assert.fail(`line ${i + 1} of the --json output is not JSON: ${line}`);
      }
      const parsed = EventSchema.safeParse(value);
      assert.ok(parsed.success, `line ${i + 1} is no event of the schema: ${line}\n${parsed.error?.message}`);
      return parsed.data;
    });
  const ends = events.filter((e) => e.event === "done" || e.event === "error");
  assert.equal(ends.length, 1, `exactly one done or error event:\n${stdout}`);
  assert.equal(events.at(-1), ends[0], `the done or error event comes last:\n${stdout}`);
  return events;
}

/** The `done` event ending a successful --json run of `command` (the result's fields beside it). */
export function doneOf(stdout: string, command: DoneEvent["command"]): DoneEvent & Record<string, unknown> {
  const last = eventLines(stdout).at(-1)!;
  assert.equal(last.event, "done", stdout);
  assert.equal((last as DoneEvent).command, command);
  return last as DoneEvent & Record<string, unknown>;
}

/** The `error` event ending a failed --json run. */
export function errorOf(stdout: string): ErrorEvent {
  const last = eventLines(stdout).at(-1)!;
  assert.equal(last.event, "error", stdout);
  return last as ErrorEvent;
}
