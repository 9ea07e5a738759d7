/**
 * GetSnapshotBlock and PutSnapshotBlock sent on our own connections (ebs-block-transport.ts), against the EBS
 * direct APIs server written from the reference (verified against that, not against AWS;
 * https://docs.aws.amazon.com/ebs/latest/APIReference/API_GetSnapshotBlock.html,
 * https://docs.aws.amazon.com/ebs/latest/APIReference/API_PutSnapshotBlock.html,
 * https://docs.aws.amazon.com/ebs/latest/APIReference/CommonErrors.html) and a bare local server for the
 * replies that one does not give: connections are kept alive and reused, an endpoint's path prefix is kept, an
 * error reply is worded and retried as the SDK's would be, and over https the cloud's CA file (openssl-made
 * private CA) is what is trusted.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AwsServiceError } from "../../../src/providers/ec2/aws-errors.js";
import { EbsConnection } from "../../../src/providers/aws/ebs-connection.js";
import { openSnapshotInput } from "../../../src/providers/aws/ebs-snapshot-input.js";
import { writeSnapshot } from "../../../src/providers/aws/ebs-snapshot-writer.js";
import { ebsRig } from "../../helpers/aws/ebs-fixture.js";
import { EBS_BLOCK_SIZE } from "../../helpers/aws/fake-aws-account.js";
import { startLocalServer } from "../../helpers/aws/local-http.js";
import { verifySigV4, type SigV4Verdict } from "../../helpers/aws/sigv4-verify.js";
import { makeTestPki, type TestPki } from "../../helpers/test-ca.js";
import { errorCode } from "../../../src/util/errors.js";

let pki: TestPki;
before(async () => {
  pki = await makeTestPki(await mkdtemp(join(process.env.CHROMOGENIC_TEST_TMP ?? tmpdir(), "chromo-pki-")));
});

async function* chunksOf(disk: Buffer): AsyncGenerator<Buffer> {
  yield disk;
}

test("blocks are read and written over kept-alive connections, not one per request", async (t) => {
  const rig = await ebsRig(t);
  const disk = Buffer.alloc(64 * EBS_BLOCK_SIZE);
  for (let i = 0; i < 64; i++) disk.fill(i + 1, i * EBS_BLOCK_SIZE + 7, i * EBS_BLOCK_SIZE + 9000);
  const snapshot = rig.account.addSnapshotOf(disk);
  const input = await openSnapshotInput(rig.ebs, snapshot.id, { concurrency: 4 });
  t.after(() => input.close());
  const out = Buffer.alloc(disk.length);
  await input.readExact(0, disk.length, out);
  assert.ok(out.equals(disk), "the blocks read are the disk's");
  const written = await writeSnapshot(rig.ebs, chunksOf(disk), { volumeSizeGiB: 1, concurrency: 4 });
  assert.equal(written.blocksWritten, 64);
  assert.equal(rig.server.blockGets, 64);
  assert.equal(rig.server.blockPuts, 64);
  // 128 block requests and 3 others; the SDK's calls keep one connection of their own alive.
  assert.ok(
    rig.server.stats.connections <= 4 + 4 + 2,
    `${rig.server.stats.connections} connections for ${rig.server.stats.requests} requests`,
  );
});

test("an error reply is worded as the SDK's, its Reason kept, and a 503 is retried", async (t) => {
  const server = await startLocalServer();
  t.after(() => server.close());
  const ebs = new EbsConnection({
    cloud: "ebs-test",
    region: "eu-west-1",
    endpoint: `${server.url}/prefix/`,
    credentials: { accessKeyId: "AKIDTRANSPORT", secretAccessKey: "transport-secret-value" },
    retryBaseDelayMs: 1,
  });
  t.after(() => ebs.destroy());
  let answers = 0;
  const verdicts: SigV4Verdict[] = [];
  server.handler = async (req, body, res) => {
    answers++;
    const secret = { secretAccessKey: "transport-secret-value" };
    verdicts.push(
      await verifySigV4({ method: req.method!, url: req.url!, headers: req.headers, body }, "ebs", () => secret),
    );
    if (req.url!.includes("blocks/3")) {
      // AWS appends the error type's namespace after a colon.
      const text = JSON.stringify({ Message: "The block token is not valid", Reason: "INVALID_BLOCK_TOKEN" });
      res.writeHead(400, {
        "content-type": "application/json",
        "x-amzn-ErrorType": "ValidationException:http://internal.amazon.com/coral/com.amazon.coral.validate/",
        "x-amzn-RequestId": "req-123",
        "content-length": String(Buffer.byteLength(text)),
      });
      return void res.end(text);
    }
    if (answers === 2) return void res.writeHead(503, { "content-type": "text/html" }).end("<html>busy</html>");
    const block = Buffer.alloc(EBS_BLOCK_SIZE, 5);
    res.writeHead(200, { "x-amz-Data-Length": String(block.length), "x-amz-Checksum": "c2hh" }).end(block);
  };
  const context = { call: "GetSnapshotBlock", subject: "snapshot snap-1 block 3" };
  await assert.rejects(
    ebs.send(() => ebs.blocks.getBlock("snap-1", 3, "tok+en/3= (x)"), context),
    (e: Error) => {
      assert.ok(e instanceof AwsServiceError);
      assert.equal(
        e.message,
        `EBS at ${server.url}/prefix/ refused GetSnapshotBlock snapshot snap-1 block 3: ValidationException: ` +
          "The block token is not valid (HTTP 400, request req-123)",
      );
      assert.equal((e.cause as { Reason?: string }).Reason, "INVALID_BLOCK_TOKEN");
      return true;
    },
  );
  // A token's "+", "/", "=", space and parentheses percent-encoded as SigV4 has them, and signed as sent.
  assert.equal(server.requests[0]!.url, "/prefix/snapshots/snap-1/blocks/3?blockToken=tok%2Ben%2F3%3D%20%28x%29");
  assert.equal(verdicts[0]!.ok, true, JSON.stringify(verdicts[0]));
  assert.equal(server.requests[0]!.accessKeyId, "AKIDTRANSPORT");
  const reply = await ebs.send(() => ebs.blocks.getBlock("snap-1", 4, "token-4"), context);
  const into = Buffer.alloc(EBS_BLOCK_SIZE);
  await reply.readInto(into);
  assert.equal(reply.dataLength, EBS_BLOCK_SIZE);
  assert.equal(reply.checksum, "c2hh");
  assert.equal(into[EBS_BLOCK_SIZE - 1], 5);
  assert.equal(ebs.stats.retries, 1, "the 503 was retried once");
  assert.equal(answers, 3);
});

test("over https, the cloud's CA file is trusted, another CA refused with a sentence, verify off checks nothing", async (t) => {
  const server = await startLocalServer({ key: pki.serverKey, cert: pki.serverCert });
  t.after(() => server.close());
  server.handler = (req, body, res) => {
    const checksum = createHash("sha256").update(body).digest("base64");
    res.writeHead(201, { "x-amz-Checksum": checksum, "x-amz-Checksum-Algorithm": "SHA256" }).end();
  };
  const block = Buffer.alloc(EBS_BLOCK_SIZE, 9);
  const digest = createHash("sha256").update(block).digest();
  const put = async (tls: ConstructorParameters<typeof EbsConnection>[0]["tls"]) => {
    const ebs = new EbsConnection({
      cloud: "ebs-tls",
      region: "eu-west-1",
      endpoint: server.url,
      credentials: { accessKeyId: "AKIDTLS", secretAccessKey: "tls-secret-value" },
      maxAttempts: 1,
      tls,
    });
    try {
      return await ebs.send(() => ebs.blocks.putBlock("snap-1", 0, block, digest, 50), {
        call: "PutSnapshotBlock",
        subject: "snapshot snap-1 block 0",
      });
    } finally {
      ebs.destroy();
    }
  };
  assert.equal(
    await put({ caFile: { path: pki.caFile, from: "AWS_CA_BUNDLE" }, verify: true }),
    digest.toString("base64"),
  );
  const e = (await put({ caFile: { path: pki.otherCaFile, from: "AWS_CA_BUNDLE" }, verify: true }).catch(
    (x: unknown) => x,
  )) as Error;
  assert.equal(errorCode(e), "ECLOUD");
  assert.match(
    e.message,
    new RegExp(
      `^EBS at ${server.url} could not be reached for PutSnapshotBlock snapshot snap-1 block 0: .*(certificate|verify)`,
      "i",
    ),
  );
  assert.equal(await put({ verify: false }), digest.toString("base64"));
  assert.equal(server.requests.length, 2, "the refused CA's request never reached the server");
});
