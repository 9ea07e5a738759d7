/** What every refusal through the CLI looks like: exit code 1 and one line on stderr that says why. */
import assert from "node:assert/strict";
import type { CliResult } from "./tools.js";

export function assertRefusedInOneLine(r: CliResult, message: RegExp, what: string): void {
  assert.equal(r.code, 1, `${what}: ${r.stderr}`);
  assert.match(r.stderr, message, what);
  assert.equal(r.stderr.split("\n").length, 2, `${what}: one line`);
}

/**
 * What a refused command prints on stdout: nothing, or with --json the one `error` event every failing command
 * ends with.
 */
export function assertNoResult(r: CliResult, args: readonly string[], code: string): void {
  if (!args.includes("--json")) {
    assert.equal(r.stdout, "", `${args.join(" ")}: nothing on stdout`);
    return;
  }
  const lines = r.stdout.trimEnd().split("\n");
  assert.equal(lines.length, 1, `${args.join(" ")}: one JSON line`);
  const event = JSON.parse(lines[0]!) as { event: string; code: string };
  assert.deepEqual([event.event, event.code], ["error", code], args.join(" "));
}
