/**
 * The keys an administrator reads the cloud's own bundles with: the settings that may go together (the signature
 * check skipped only with the cloud's key, never beside a signer certificate), a cloud key others can read
 * refused as ssh refuses one, and the signers tried: every certificate of the signer file, then the user's.
 * The manifest opened by one of several signers, and refused when none signed it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmod, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { bundleReadingKeys } from "../../../src/providers/eucalyptus/bundle-signing-keys.js";
import { eucalyptusSettings } from "../../../src/providers/eucalyptus/eucalyptus-settings.js";
import type { Ec2CloudConfig } from "../../../src/providers/ec2/ec2-cloud-config.js";
import { DirectoryBundleStore } from "../../../src/formats/bundle/directory-bundle-store.js";
import { openBundleManifest } from "../../../src/formats/bundle/open-bundle-manifest.js";
import { writeBundle } from "../../../src/formats/bundle/write-bundle.js";
import { readPrivateKey, readPublicKey } from "../../../src/formats/bundle/bundle-keys.js";
import { openImage } from "../../../src/formats/engine/open-image.js";
import { UsageError, VerificationError } from "../../../src/util/errors.js";
import { makeBundleKeys } from "../../helpers/euca2ools.js";
import { pattern, scratch } from "../../helpers/tools.js";

const config = (certPath: string): Ec2CloudConfig => ({
  name: "env-euca",
  kind: "eucalyptus",
  source: "test",
  ec2Url: "http://127.0.0.1:9/services/compute",
  region: "us-east-1",
  accessKeyId: "a",
  secretAccessKey: "s",
  certPath,
  tls: { verify: true },
});

test("settings: the signature check skipped or a signer given only with the cloud's key, not both", () => {
  const refused = (env: Record<string, string>, message: RegExp) =>
    assert.throws(
      () => eucalyptusSettings(env, "1"),
      (e: unknown) => e instanceof UsageError && message.test(String(e)),
    );
  refused({ CHROMOGENIC_SKIP_BUNDLE_SIGNATURE_CHECK: "true" }, /--skip-bundle-signature-check goes with the cloud's/);
  refused({ CHROMOGENIC_BUNDLE_SIGNER_CERT: "n.pem" }, /--bundle-signer-cert goes with the cloud's private key/);
  refused(
    {
      CHROMOGENIC_CLOUD_PRIVATE_KEY: "k",
      CHROMOGENIC_BUNDLE_SIGNER_CERT: "n",
      CHROMOGENIC_SKIP_BUNDLE_SIGNATURE_CHECK: "1",
    },
    /check the signature or do not/,
  );
  assert.deepEqual(
    eucalyptusSettings({ CHROMOGENIC_CLOUD_PRIVATE_KEY: "k", CHROMOGENIC_SKIP_BUNDLE_SIGNATURE_CHECK: "no" }, "1")
      .cloudKey,
    { privateKeyPath: "k" },
  );
});

test("the cloud's key: refused when others may read it; signers are the signer file's certificates and the user's", async (t) => {
  const dir = await scratch(t);
  const keys = await makeBundleKeys(dir);
  const signers = join(dir, "node-certs.pem");
  // Two clusters' node certificates in one file, as a CA bundle keeps them.
  await writeFile(signers, (await readFile(keys.otherCert, "utf8")) + (await readFile(keys.cloudCert, "utf8")));
  await chmod(keys.cloudKey, 0o640);
  await assert.rejects(
    bundleReadingKeys(config(keys.userCert), { privateKeyPath: keys.cloudKey, signerCertPath: signers }),
    /cloud\.key: the cloud's private key is readable or writable by others \(mode 0640\); .*chmod 600/,
  );
  await chmod(keys.cloudKey, 0o600);
  const read = await bundleReadingKeys(config(keys.userCert), {
    privateKeyPath: keys.cloudKey,
    signerCertPath: signers,
  });
  assert.equal(read.userCertificate?.length, 3);
  assert.equal(read.signatureUnchecked, undefined);
  const skipped = await bundleReadingKeys(config(keys.userCert), {
    privateKeyPath: keys.cloudKey,
    skipSignatureCheck: true,
  });
  assert.deepEqual([skipped.userCertificate, skipped.signatureUnchecked], [undefined, true]);

  // A bundle signed by the "node" (other), wrapped for the cloud: opened with the signer file, refused without it.
  const store = new DirectoryBundleStore(dir);
  await writeFile(join(dir, "disk"), pattern(100_000, 3));
  const { source } = await openImage(join(dir, "disk"), { format: "raw" });
  await writeBundle({
    source,
    prefix: "node-made",
    store,
    architecture: "x86_64",
    user: "123456789012",
    userKey: await readPrivateKey(keys.otherKey),
    userCertificate: await readPublicKey(keys.cloudCert),
    cloudCertificate: await readPublicKey(keys.cloudCert),
  }).finally(() => source.close());
  const open = (k: typeof read) => openBundleManifest({ store, manifestName: "node-made.manifest.xml", ...k });
  assert.equal((await open(read)).manifest.image.size, 100_000);
  assert.equal((await open(skipped)).manifest.image.size, 100_000);
  const userOnly = await bundleReadingKeys(config(keys.userCert), { privateKeyPath: keys.cloudKey });
  await assert.rejects(
    open(userOnly),
    (e: unknown) => e instanceof VerificationError && /signature does not match/.test(String(e)),
  );
});
