/**
 * The EBS connection against the EBS direct APIs server written from the reference
 * (test/helpers/aws/ebs-direct-server.ts; https://docs.aws.amazon.com/ebs/latest/userguide/error-retries.html,
 * and the SigV4 refusals of https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html):
 * credentials that expire in the middle of a transfer are asked of the refreshing provider again, and the
 * transfer goes on; a fixed key that expires ends it with a sentence saying so; InternalServerException is
 * retried, AccessDeniedException and ServiceQuotaExceededException are not.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { EbsConnection } from "../../../src/providers/aws/ebs-connection.js";
import { openSnapshotInput } from "../../../src/providers/aws/ebs-snapshot-input.js";
import { ebsRig } from "../../helpers/aws/ebs-fixture.js";
import { EBS_BLOCK_SIZE } from "../../helpers/aws/fake-aws-account.js";

function disk(): Buffer {
  const bytes = Buffer.alloc(32 * EBS_BLOCK_SIZE);
  for (let i = 0; i < 32; i += 2) bytes.fill(i + 1, i * EBS_BLOCK_SIZE, i * EBS_BLOCK_SIZE + 4096);
  return bytes;
}

test("a session that expires mid-read is asked of the provider again and the read goes on", async (t) => {
  const rig = await ebsRig(t);
  const bytes = disk();
  const snapshot = rig.account.addSnapshotOf(bytes);
  // The first session ends (by the server's clock) long before the expiry it announced to the SDK.
  const first = rig.account.addCredential({ sessionToken: true, expiresAt: Date.now() + 60_000 });
  const second = rig.account.addCredential({ sessionToken: true });
  let calls = 0;
  const ebs = new EbsConnection({
    cloud: "ebs-test",
    region: rig.account.region,
    endpoint: rig.server.url,
    credentials: async () => {
      const key = ++calls === 1 ? first : second;
      return {
        accessKeyId: key.accessKeyId,
        secretAccessKey: key.secretAccessKey,
        sessionToken: key.sessionToken!,
        expiration: new Date(Date.now() + 3600_000),
      };
    },
    retryBaseDelayMs: 5,
  });
  t.after(() => ebs.destroy());
  const input = await openSnapshotInput(ebs, snapshot.id, { concurrency: 4 });
  t.after(() => input.close());
  const out = Buffer.alloc(bytes.length);
  await input.readExact(0, bytes.length / 2, out);
  assert.equal(calls, 1);
  const real = rig.account.now;
  rig.account.now = () => real() + 2 * 60_000;
  await input.readExact(bytes.length / 2, bytes.length / 2, out.subarray(bytes.length / 2));
  assert.ok(out.equals(bytes));
  assert.equal(calls, 2, "the provider was asked once more");
  assert.equal(ebs.stats.refreshes, 1, "one refresh for all the blocks in flight");
});

test("a fixed key that expires ends the transfer with ExpiredToken, its secret kept out", async (t) => {
  const rig = await ebsRig(t);
  const snapshot = rig.account.addSnapshotOf(disk());
  const key = rig.account.addCredential({ sessionToken: true, expiresAt: Date.now() - 1000 });
  const ebs = new EbsConnection({
    cloud: "ebs-test",
    region: rig.account.region,
    endpoint: rig.server.url,
    credentials: {
      accessKeyId: key.accessKeyId,
      secretAccessKey: key.secretAccessKey,
      sessionToken: key.sessionToken!,
    },
  });
  t.after(() => ebs.destroy());
  await assert.rejects(openSnapshotInput(ebs, snapshot.id), (e: Error & { code?: string }) => {
    assert.match(e.message, /refused ListSnapshotBlocks snapshot snap-[0-9a-f]+: ExpiredToken/);
    assert.equal(e.code, "EAUTH");
    assert.ok(!e.message.includes(key.secretAccessKey) && !e.message.includes(key.sessionToken!));
    return true;
  });
});

test("server errors are retried; refusals the reference calls final are not", async (t) => {
  const rig = await ebsRig(t);
  const bytes = disk();
  const snapshot = rig.account.addSnapshotOf(bytes);
  rig.server.knobs.failWith = { code: "InternalServerException", count: 2 };
  const input = await openSnapshotInput(rig.ebs, snapshot.id);
  await input.close();
  assert.equal(rig.ebs.stats.retries, 2, "two 500s, then the listing");
  for (const [code, status, errorCode] of [
    ["AccessDeniedException", 403, "EAUTH"],
    ["ServiceQuotaExceededException", 402, "ECLOUD"],
  ] as const) {
    const before: number = rig.ebs.stats.retries;
    rig.server.knobs.failWith = { code, count: 1 };
    await assert.rejects(openSnapshotInput(rig.ebs, snapshot.id), (e: Error & { code?: string }) => {
      assert.match(
        e.message,
        new RegExp(`refused ListSnapshotBlocks snapshot ${snapshot.id}: ${code}: .*HTTP ${status}`),
      );
      assert.equal(e.code, errorCode);
      return true;
    });
    assert.equal(rig.ebs.stats.retries, before, `${code} is not retried`);
  }
});
