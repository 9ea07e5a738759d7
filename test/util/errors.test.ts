/**
 * The one error hierarchy: every code has its exit status and its line in docs/ERRORS.md (and no line names a
 * code that does not exist), every error class the library exports is a ChromogenicError named there, and the
 * provider's errors keep their fields and their redaction inside the hierarchy.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import * as library from "../../src/index.js";
import { packageRoot } from "../../src/util/package-files.js";
import { ChromogenicError, ERROR_CODES, errorCode, exitStatus, UsageError } from "../../src/util/errors.js";
import {
  AuthenticationError,
  OpenStackConfigError,
  OpenStackError,
  WaitError,
} from "../../src/providers/openstack/errors.js";
import { CorruptImageError } from "../../src/formats/errors.js";

async function documentedCodes(): Promise<{ codes: Map<string, number>; text: string }> {
  const text = await readFile(join(packageRoot(), "docs", "ERRORS.md"), "utf8");
  const codes = new Map<string, number>();
  for (const m of text.matchAll(/^\| `(E[A-Z0-9]+)` +\| (\d+) +\|/gm)) codes.set(m[1]!, Number(m[2]));
  return { codes, text };
}

test("docs/ERRORS.md lists every code with its exit status, and nothing else", async () => {
  const { codes } = await documentedCodes();
  assert.deepEqual(Object.fromEntries(codes), { ...ERROR_CODES });
});

test("every error class the library exports is a ChromogenicError that docs/ERRORS.md names", async () => {
  const { text } = await documentedCodes();
  const classes = Object.entries(library).filter(
    ([, value]) => typeof value === "function" && value.prototype instanceof Error,
  );
  assert.ok(classes.length >= 20, `the library exports its errors (${classes.length} found)`);
  for (const [name, value] of classes) {
    const isChromogenic =
      value === ChromogenicError || (value as { prototype: object }).prototype instanceof ChromogenicError;
    assert.ok(isChromogenic, `${name} is a ChromogenicError`);
    assert.ok(text.includes(`\`${name}\``), `docs/ERRORS.md names ${name}`);
  }
});

test("errorCode: a ChromogenicError's code, EABORTED for an AbortSignal's error, errno names, else EINTERNAL", () => {
  assert.equal(errorCode(new CorruptImageError("x")), "ECORRUPT");
  assert.equal(exitStatus(new UsageError("x")), 2);
  const controller = new AbortController();
  controller.abort();
  assert.equal(errorCode(controller.signal.reason), "EABORTED");
  assert.equal(exitStatus(controller.signal.reason), 130);
  const enoent = Object.assign(new Error("ENOENT: no such file"), { code: "ENOENT", syscall: "open" });
  assert.equal(errorCode(enoent), "ENOENT");
  assert.equal(errorCode(Object.assign(new Error("x"), { code: "EACCES" })), "EACCES");
  assert.equal(exitStatus(Object.assign(new Error("x"), { code: "EACCES" })), 1);
  assert.equal(errorCode(new RangeError("offset out of range")), "EINTERNAL");
  assert.equal(errorCode(Object.assign(new Error("x"), { code: "ERR_INVALID_ARG_TYPE" })), "EINTERNAL");
  assert.equal(errorCode("a string"), "EINTERNAL");
});

test("the OpenStack errors are ChromogenicErrors with their codes, fields and redaction", () => {
  const token = "gAAAAABm" + "x".repeat(40);
  const auth = new AuthenticationError(
    { cloud: "a1", call: "keystone authenticate", status: 401 },
    `refused ${token} {"password": "hunter2"}`,
  );
  assert.ok(auth instanceof OpenStackError && auth instanceof ChromogenicError);
  assert.equal(auth.code, "EAUTH");
  assert.equal(auth.name, "AuthenticationError");
  assert.deepEqual([auth.cloud, auth.call, auth.status], ["a1", "keystone authenticate", 401]);
  assert.ok(!auth.message.includes(token) && !auth.message.includes("hunter2"), auth.message);
  assert.match(auth.message, /^cloud "a1": keystone authenticate → HTTP 401: refused \*\*\* \{"password": "\*\*\*"\}$/);
  assert.equal(new OpenStackError({ cloud: "a1", call: "glance GET /v2/images" }, "x").code, "ECLOUD");
  assert.equal(new WaitError({ cloud: "a1", call: "wait" }, "x").code, "EWAIT");
  const config = new OpenStackConfigError(`cloud "x": token ${token}`);
  assert.equal(config.code, "ECONFIG");
  assert.ok(!config.message.includes(token));
});
