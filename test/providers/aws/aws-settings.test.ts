/** The AWS store's settings from the environment the CLI options set: defaults, accepted values, refusals. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { awsSettings, requireAwsBucket } from "../../../src/providers/aws/aws-settings.js";

test("defaults: the EBS direct APIs both ways, no bucket, role vmimport, tasks looked at every 5 s", () => {
  const s = awsSettings({});
  assert.equal(s.readVia, "ebs-direct");
  assert.equal(s.writeVia, "ebs-direct");
  assert.equal(s.bucket, undefined);
  assert.equal(s.vmImportRole, "vmimport");
  assert.equal(s.taskPollMs, 5000);
  assert.throws(
    () => requireAwsBucket(s, "--aws-read-via export"),
    /--aws-read-via export goes through an S3 bucket: .*--aws-bucket/,
  );
});

test("export, import, a bucket, a role and a poll interval are taken as given", () => {
  const s = awsSettings({
    CHROMOGENIC_AWS_READ_VIA: "export",
    CHROMOGENIC_AWS_WRITE_VIA: "import",
    CHROMOGENIC_AWS_BUCKET: "my-images",
    CHROMOGENIC_AWS_VM_IMPORT_ROLE: "imports",
    CHROMOGENIC_AWS_TASK_POLL_SECONDS: "0.5",
  });
  assert.deepEqual(
    [s.readVia, s.writeVia, s.bucket, s.vmImportRole, s.taskPollMs],
    ["export", "import", "my-images", "imports", 500],
  );
  assert.equal(requireAwsBucket(s, "x"), "my-images");
});

test("a way that does not exist, or a poll interval out of range, is a usage error naming the option", () => {
  for (const [env, message] of [
    [{ CHROMOGENIC_AWS_READ_VIA: "import" }, /--aws-read-via "import" is not one of ebs-direct, export/],
    [{ CHROMOGENIC_AWS_WRITE_VIA: "export" }, /--aws-write-via "export" is not one of ebs-direct, import/],
    [{ CHROMOGENIC_AWS_TASK_POLL_SECONDS: "0" }, /CHROMOGENIC_AWS_TASK_POLL_SECONDS "0"/],
    [{ CHROMOGENIC_AWS_TASK_POLL_SECONDS: "soon" }, /CHROMOGENIC_AWS_TASK_POLL_SECONDS "soon"/],
  ] as const) {
    assert.throws(
      () => awsSettings(env),
      (e: Error & { code?: string }) => e.code === "EUSAGE" && message.test(e.message),
    );
  }
});
