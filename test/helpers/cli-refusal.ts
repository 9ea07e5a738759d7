/** What every refusal through the CLI looks like: exit code 1 and one line on stderr that says why. */
import assert from "node:assert/strict";
import type { CliResult } from "./tools.js";

export function assertRefusedInOneLine(r: CliResult, message: RegExp, what: string): void {
  assert.equal(r.code, 1, `${what}: ${r.stderr}`);
  assert.match(r.stderr, message, what);
  assert.equal(r.stderr.split("\n").length, 2, `${what}: one line`);
}
