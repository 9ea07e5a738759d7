import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { stringify as toYaml } from "yaml";
import { ApiTokens, hashApiToken, newApiToken, refusal } from "../../../src/service/api/api-tokens.js";

test("a new token is random, its entry holds its SHA-256 and never the token", () => {
  const a = newApiToken("portal", { clouds: ["*"], kinds: ["migrate"] });
  const b = newApiToken("portal");
  assert.notEqual(a.token, b.token);
  assert.match(a.token, /^cgt_[A-Za-z0-9_-]{43}$/);
  assert.equal(a.entry.sha256, hashApiToken(a.token));
  assert.ok(!JSON.stringify(a.entry).includes(a.token.slice(4)));
  assert.deepEqual(b.entry.kinds, []);
  assert.throws(() => newApiToken("bad name!"));
});

test("the tokens file is read strictly; a token is identified by its hash; rights by kind and cloud", async () => {
  const dir = mkdtempSync(join(tmpdir(), "chromogenic-tokens-"));
  try {
    const portal = newApiToken("portal", { clouds: ["os-a", "local:/srv"], kinds: ["migrate", "convert"] });
    const file = join(dir, "tokens.yaml");
    writeFileSync(file, toYaml({ tokens: [portal.entry] }));
    const tokens = await ApiTokens.load(file);
    const who = tokens.identify(portal.token);
    assert.equal(who?.name, "portal");
    assert.equal(tokens.identify(portal.token + "x"), undefined);
    assert.equal(tokens.identify(portal.entry.sha256), undefined, "the hash is not a token");
    const migrate = (cloud: string) => ({
      kind: "migrate" as const,
      source: { cloud: "os-a" },
      destination: { kind: "cloud" as const, cloud },
    });
    assert.equal(refusal(who!, migrate("local:/srv")), undefined);
    assert.match(refusal(who!, migrate("os-b")) ?? "", /may not use cloud "os-b"/);
    assert.match(refusal(who!, { kind: "clean", input: "/a", output: "/b" }) ?? "", /may not run clean jobs/);

    writeFileSync(file, toYaml({ tokens: [{ ...portal.entry, token: "plain" }] }));
    await assert.rejects(ApiTokens.load(file), /token/);
    writeFileSync(file, toYaml({ tokens: [portal.entry, portal.entry] }));
    await assert.rejects(ApiTokens.load(file), /appears twice/);
    writeFileSync(file, toYaml({ tokens: [{ ...portal.entry, sha256: "abc" }] }));
    await assert.rejects(ApiTokens.load(file), /SHA-256/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
