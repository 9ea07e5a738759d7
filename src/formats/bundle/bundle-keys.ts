/**
 * The bundle's cryptography, as euca2ools and ec2-ami-tools do it with the openssl CLI: a random AES-128 key and
 * IV, each carried as its 32-character lower-hex string; those strings RSA-encrypted with PKCS#1 v1.5 padding for
 * the cloud's certificate and the user's; the manifest signed RSASSA-PKCS1-v1_5 with SHA-1 by the user's key.
 *
 * Unwrapping uses privateDecrypt with RSA_PKCS1_PADDING. Node ≥ 20.11 refuses that padding (CVE-2023-46809,
 * the Marvin timing attack) unless its OpenSSL does "implicit rejection"; the Node 24 here links OpenSSL 3.5,
 * which does, so the call is allowed. With implicit rejection a wrong key does not throw: it yields a
 * deterministic random string. So the result is accepted only when it is exactly what a bundler wraps, 32 hex
 * digits, and anything else is reported as a key that does not open the bundle. Where privateDecrypt refuses
 * the padding (an older Node 22 build without implicit rejection), rsa-pkcs1-unwrap.ts does the same by hand.
 */
import {
  X509Certificate,
  constants,
  createPrivateKey,
  createPublicKey,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  sign,
  verify,
  type KeyObject,
} from "node:crypto";
import { readFile } from "node:fs/promises";
import { UsageError, VerificationError } from "../../util/errors.js";
import { rsaPkcs1Decrypt } from "./rsa-pkcs1-unwrap.js";

/** The AES key and IV as the manifest carries them before wrapping: 32 lower hex digits each. */
export interface BundleSecret {
  readonly key: string;
  readonly iv: string;
}

const SECRET_HEX = /^[0-9a-f]{32}$/;

export function randomBundleSecret(): BundleSecret {
  return { key: randomBytes(16).toString("hex"), iv: randomBytes(16).toString("hex") };
}

/** A key or IV given by the caller (euca2ools' --enc-key/--enc-iv), checked and normalised. */
export function bundleSecretFromHex(key: string, iv: string): BundleSecret {
  const norm = (value: string, what: string) => {
    const hex = value.toLowerCase().padStart(32, "0");
    if (!SECRET_HEX.test(hex)) throw new UsageError(`${what} must be at most 32 hex digits`);
    return hex;
  };
  return { key: norm(key, "the encryption key"), iv: norm(iv, "the encryption IV") };
}

/** A private key from a PEM file (PKCS#1 or PKCS#8), named in errors. */
export async function readPrivateKey(path: string): Promise<KeyObject> {
  const pem = await readFile(path).catch((e: NodeJS.ErrnoException) => {
    throw new UsageError(`${path}: cannot read the private key (${e.code ?? e.message})`);
  });
  try {
    return createPrivateKey(pem);
  } catch (e) {
    throw new UsageError(`${path}: not a PEM private key (${(e as Error).message})`);
  }
}

/** A public key from a PEM X.509 certificate (what euca2ools takes) or a PEM public key. */
export async function readPublicKey(path: string): Promise<KeyObject> {
  const pem = await readFile(path).catch((e: NodeJS.ErrnoException) => {
    throw new UsageError(`${path}: cannot read the certificate (${e.code ?? e.message})`);
  });
  try {
    return pem.includes("BEGIN CERTIFICATE") ? new X509Certificate(pem).publicKey : createPublicKey(pem);
  } catch (e) {
    throw new UsageError(`${path}: not a PEM certificate or public key (${(e as Error).message})`);
  }
}

/**
 * The public keys of every PEM certificate in a file: the signers a bundle may come from (a cloud with several
 * clusters has one node-controller certificate per cluster, kept together in one file as a CA bundle is).
 */
export async function readCertificates(path: string): Promise<KeyObject[]> {
  const pem = await readFile(path, "latin1").catch((e: NodeJS.ErrnoException) => {
    throw new UsageError(`${path}: cannot read the certificates (${e.code ?? e.message})`);
  });
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new UsageError(`${path}: no PEM certificate in it`);
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block).publicKey;
    } catch (e) {
      throw new UsageError(`${path}: certificate ${i + 1} is not a valid X.509 certificate (${(e as Error).message})`);
    }
  });
}

/** The hex string RSA-encrypted for `publicKey` (PKCS#1 v1.5), as hex. */
export function wrapHex(secretHex: string, publicKey: KeyObject): string {
  return publicEncrypt(
    { key: publicKey, padding: constants.RSA_PKCS1_PADDING },
    Buffer.from(secretHex, "ascii"),
  ).toString("hex");
}

/** Unwraps one hex field; undefined when this key does not open it. */
function unwrapHex(wrapped: string, privateKey: KeyObject): string | undefined {
  if (!wrapped) return undefined;
  const ciphertext = Buffer.from(wrapped, "hex");
  let plain: Buffer | undefined;
  try {
    plain = privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_PADDING }, ciphertext);
  } catch (e) {
    // Refused outright (CVE-2023-46809 revert not available): unwrap by hand. Any other failure is a wrong key.
    plain =
      (e as NodeJS.ErrnoException).code === "ERR_INVALID_ARG_VALUE"
        ? rsaPkcs1Decrypt(privateKey, ciphertext)
        : undefined;
  }
  // Upper case is accepted, as euca2ools accepts anything int(x, 16) reads.
  const hex = plain?.toString("latin1").trim().toLowerCase();
  return hex !== undefined && SECRET_HEX.test(hex) ? hex : undefined;
}

export interface WrappedSecret {
  readonly userEncryptedKey: string;
  readonly userEncryptedIv: string;
  readonly ec2EncryptedKey: string;
  readonly ec2EncryptedIv: string;
}

/** The key and IV from the user's fields, else the cloud's, with whichever private key was given. */
export function unwrapBundleSecret(wrapped: WrappedSecret, privateKey: KeyObject, where: string): BundleSecret {
  const key = unwrapHex(wrapped.userEncryptedKey, privateKey) ?? unwrapHex(wrapped.ec2EncryptedKey, privateKey);
  const iv = unwrapHex(wrapped.userEncryptedIv, privateKey) ?? unwrapHex(wrapped.ec2EncryptedIv, privateKey);
  if (key === undefined || iv === undefined) {
    throw new VerificationError(
      `${where}: this key does not open the bundle (it is neither the bundling user's nor the cloud's key)`,
    );
  }
  return { key, iv };
}

export function signManifestText(text: Uint8Array, privateKey: KeyObject): string {
  return sign("sha1", text, { key: privateKey, padding: constants.RSA_PKCS1_PADDING }).toString("hex");
}

/** Throws unless `signatureHex` is the owner's signature of `text`. */
export function verifyManifestText(text: Uint8Array, signatureHex: string, publicKey: KeyObject, where: string): void {
  let good = false;
  try {
    good = verify(
      "sha1",
      text,
      { key: publicKey, padding: constants.RSA_PKCS1_PADDING },
      Buffer.from(signatureHex, "hex"),
    );
  } catch {
    good = false;
  }
  if (!good) {
    throw new VerificationError(
      `${where}: the manifest's signature does not match (altered, or signed by another key than the one given)`,
    );
  }
}
