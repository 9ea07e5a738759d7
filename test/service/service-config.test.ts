import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { readServiceConfig } from "../../src/service/service-config.js";

test("the configuration file: defaults filled, paths taken from its folder, unknown keys refused", async () => {
  const dir = mkdtempSync(join(tmpdir(), "chromogenic-config-"));
  try {
    const file = join(dir, "service.yaml");
    writeFileSync(
      file,
      "folders:\n  read: [images]\n  write: [/srv/out]\napi:\n  tokens: tokens.yaml\n  tls: { cert: c.pem, key: k.pem }\n",
    );
    const config = await readServiceConfig(file);
    assert.deepEqual(config.folders, { read: [join(dir, "images")], write: ["/srv/out"] });
    assert.equal(config.api.tokens, join(dir, "tokens.yaml"));
    assert.deepEqual(config.api.tls, { cert: join(dir, "c.pem"), key: join(dir, "k.pem") });
    assert.equal(config.api.port, 8470);
    assert.equal(config.api.host, "127.0.0.1");
    assert.deepEqual(config.api.rateLimit, { max: 600, windowSeconds: 60 });
    writeFileSync(file, "api:\n  tokens: t.yaml\n  prot: 1\n");
    await assert.rejects(readServiceConfig(file), /prot/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
