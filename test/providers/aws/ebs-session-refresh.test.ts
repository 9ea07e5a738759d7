/**
 * A session the server ends before its announced expiry (revoked, or a clock apart) in the middle of a snapshot
 * read: the EBS connection tells the memoizing provider of aws-credentials.ts to forget the refused identity,
 * asks again, and the read completes on the new session — one refresh, not one per block. Without the
 * invalidation the provider would hand back the refused identity until its own expiry and the read would fail.
 * Server: test/helpers/aws/ebs-direct-server.ts, written from the EBS direct APIs reference
 * (https://docs.aws.amazon.com/ebs/latest/APIReference/API_GetSnapshotBlock.html, errors: ExpiredToken as in
 * https://docs.aws.amazon.com/ebs/latest/APIReference/CommonErrors.html).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { EbsConnection } from "../../../src/providers/aws/ebs-connection.js";
import { openSnapshotInput } from "../../../src/providers/aws/ebs-snapshot-input.js";
import { refreshingCredentials } from "../../../src/providers/aws/aws-credentials.js";
import { EbsDirectServer } from "../../helpers/aws/ebs-direct-server.js";
import { FakeAwsAccount } from "../../helpers/aws/fake-aws-account.js";
import { scatteredDisk } from "../../helpers/aws/ebs-fixture.js";
import { scratch } from "../../helpers/tools.js";

test("a session ended mid-read is refreshed once through the memoizing provider and the read completes", async (t) => {
  const dir = await scratch(t, "chromo-ebs-session-");
  const disk = await scatteredDisk(dir);
  const account = new FakeAwsAccount({ region: "eu-west-1" });
  const snapshot = account.addSnapshotOfFile(disk.path, { volumeSizeGiB: 1 });
  const server = await EbsDirectServer.start(account, { blockLatencyMs: 2 });
  t.after(() => server.close());
  const issued: string[] = [];
  // Sessions announced to last an hour, so only the server's refusal can make the provider ask again.
  const credentials = refreshingCredentials(
    async () => {
      const key = account.addCredential({ sessionToken: true, expiresAt: Date.now() + 3_600_000 });
      issued.push(key.accessKeyId);
      return key;
    },
    { cloud: "test" },
  );
  const ebs = new EbsConnection({
    cloud: "test",
    region: account.region,
    endpoint: server.url,
    credentials,
    retryBaseDelayMs: 5,
  });
  t.after(() => ebs.destroy());
  const input = await openSnapshotInput(ebs, snapshot.id, { concurrency: 4 });
  t.after(() => input.close());
  const half = 512 * 2 ** 20;
  const first = await input.readExact(0, half);
  assert.ok(first.equals(disk.bytes.subarray(0, half)));
  assert.equal(issued.length, 1);
  // The server ends the session now.
  const ended = account.credentials.get(issued[0]!)!;
  account.credentials.set(issued[0]!, { ...ended, expiresAt: Date.now() - 1 });
  const second = await input.readExact(half, half);
  assert.ok(second.equals(disk.bytes.subarray(half)), "the rest read on the new session");
  assert.equal(issued.length, 2, "one new session, not one per block");
  assert.ok(ebs.stats.refreshes >= 1);
});
