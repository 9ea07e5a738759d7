/**
 * The keys a Eucalyptus store bundles and unbundles with, from the cloud's configuration: the user's private key
 * and certificate (EC2_PRIVATE_KEY, EC2_CERT: they sign a manifest and open a bundle made for the user) and the
 * cloud's certificate (EUCALYPTUS_CERT: the cloud opens the bundle with its own key to register it); for an
 * administrator reading what the cloud bundled itself, the cloud's private key (eucalyptus-settings.ts). Each is
 * read when first needed, and a missing one is named with the variable or .ini option that gives it.
 */
import type { KeyObject } from "node:crypto";
import { readCertificates, readPrivateKey, readPublicKey } from "../../formats/bundle/bundle-keys.js";
import { checkPrivateKeyFile } from "../../util/private-key-file.js";
import { UsageError } from "../../util/errors.js";
import type { Ec2CloudConfig } from "../ec2/ec2-cloud-config.js";
import type { BundleReadingKeys } from "../ec2/bundle-images.js";
import type { CloudKeySettings } from "./eucalyptus-settings.js";

export interface BundleSigningKeys {
  readonly userKey: KeyObject;
  readonly userCertificate: KeyObject;
  readonly cloudCertificate: KeyObject;
}

function need(config: Ec2CloudConfig, path: string | undefined, what: string, where: string): string {
  if (!path) throw new UsageError(`cloud "${config.name}": ${what} is not configured (${where})`);
  return path;
}

const USER_KEY = ["the user's private key", "EC2_PRIVATE_KEY, or private-key in its euca2ools user section"] as const;
const USER_CERT = ["the user's certificate", "EC2_CERT, or certificate in its euca2ools user section"] as const;
const CLOUD_CERT = [
  "the cloud's certificate",
  "EUCALYPTUS_CERT, or certificate in its euca2ools region section",
] as const;

/** Everything writing a bundle for this cloud takes. */
export async function bundleWritingKeys(config: Ec2CloudConfig): Promise<BundleSigningKeys> {
  const [userKey, userCertificate, cloudCertificate] = await Promise.all([
    readPrivateKey(need(config, config.privateKeyPath, ...USER_KEY)),
    readPublicKey(need(config, config.certPath, ...USER_CERT)),
    readPublicKey(need(config, config.cloudCertPath, ...CLOUD_CERT)),
  ]);
  return { userKey, userCertificate, cloudCertificate };
}

/**
 * What reading a bundle takes: the user's key and certificate; or, given by an administrator, the cloud's key
 * (which opens the user's bundles and the cloud's own alike) with the certificates of the cloud's bundlers and the
 * user's, or with the signature check explicitly off.
 */
export async function bundleReadingKeys(
  config: Ec2CloudConfig,
  cloudKey?: CloudKeySettings,
): Promise<BundleReadingKeys> {
  const userCertificate = config.certPath ? [await readPublicKey(config.certPath)] : [];
  if (!cloudKey) {
    const privateKey = await readPrivateKey(need(config, config.privateKeyPath, ...USER_KEY));
    return { privateKey, ...(userCertificate.length ? { userCertificate } : {}) };
  }
  await checkPrivateKeyFile(cloudKey.privateKeyPath, "the cloud's private key");
  const privateKey = await readPrivateKey(cloudKey.privateKeyPath);
  if (cloudKey.skipSignatureCheck) return { privateKey, signatureUnchecked: true };
  const signers = cloudKey.signerCertPath ? await readCertificates(cloudKey.signerCertPath) : [];
  return { privateKey, userCertificate: [...signers, ...userCertificate] };
}
