/**
 * The keys an instance-store AMI's bundle opens with on AWS. ec2-bundle-image wraps the bundle's AES key for
 * two certificates, the user's (-c) and AWS's own EC2 certificate (--ec2cert), and signs the manifest with the
 * user's private key (-k); AWS keeps its key, so a user reads a bundle with the private key of the certificate
 * it was made for — EC2_PRIVATE_KEY, as AWS's EC2 tools and euca2ools name it (aws-settings.ts) — and checks
 * the signature with EC2_CERT, else with that key's own public half (the bundler signs with the same key).
 */
import { createPublicKey } from "node:crypto";
import { readPrivateKey, readPublicKey } from "../../formats/bundle/bundle-keys.js";
import { UsageError, VerificationError } from "../../util/errors.js";
import type { BundleReadingKeys } from "../ec2/bundle-images.js";
import type { AwsSettings } from "./aws-settings.js";

/** What reading an instance-store AMI takes; `label` names the store in the refusal. */
export async function awsBundleReadingKeys(settings: AwsSettings, label: string): Promise<BundleReadingKeys> {
  const given = settings.bundleKey;
  if (!given) {
    throw new UsageError(
      `${label}: an instance-store AMI is a bundle in S3, which opens only with the private key of the ` +
        "certificate it was bundled for: set EC2_PRIVATE_KEY to that key (and EC2_CERT to the certificate)",
    );
  }
  const privateKey = await readPrivateKey(given.privateKeyPath);
  const signer = given.certPath ? await readPublicKey(given.certPath) : createPublicKey(privateKey);
  return { privateKey, userCertificate: [signer] };
}

/** A refused manifest or key, with which setting to look at. */
export function explainAwsBundleRefusal(e: VerificationError, settings: AwsSettings): VerificationError {
  const key = `EC2_PRIVATE_KEY (${settings.bundleKey?.privateKeyPath})`;
  const cert = settings.bundleKey?.certPath
    ? `EC2_CERT (${settings.bundleKey.certPath}) must be the certificate that signed it`
    : "without EC2_CERT the signature is checked against the key's own public half";
  return new VerificationError(
    `${e.message}; an instance-store AMI opens with the private key of the certificate it was bundled for ` +
      `(ec2-bundle-image -c): ${key} is not that key, or ${cert}`,
  );
}
