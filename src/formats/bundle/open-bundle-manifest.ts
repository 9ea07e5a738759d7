/**
 * The first step of reading a bundle, before any part is touched: the manifest fetched (bounded), parsed
 * strictly, its signature verified against the user's certificate (or the public half of the key given), and the
 * AES key and IV unwrapped with the user's or the cloud's private key.
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import type { BundleStore } from "./bundle-store.js";
import type { ParsedBundleManifest } from "./bundle-manifest.js";
import { checkBundleFileName } from "./bundle-file-name.js";
import { MAX_MANIFEST_BYTES, parseBundleManifest } from "./manifest-parser.js";
import { unwrapBundleSecret, verifyManifestText } from "./bundle-keys.js";
import { VerificationError } from "../../util/errors.js";

export interface BundleManifestRequest {
  /** Where the manifest is. */
  readonly store: BundleStore;
  readonly manifestName: string;
  /** The user's or the cloud's private key: it unwraps the AES key and IV. */
  readonly privateKey: KeyObject;
  /**
   * Verifies the signature (several: any one of them); without it, the public half of `privateKey` (then it must
   * be the user's).
   */
  readonly userCertificate?: KeyObject | readonly KeyObject[];
  /**
   * Take the manifest without checking who signed it. Only for a reader holding the cloud's key that was not
   * given the signer's certificate: the digests then prove the parts match the manifest, not who wrote it.
   */
  readonly signatureUnchecked?: boolean;
  readonly signal?: AbortSignal;
}

export interface OpenedBundleManifest {
  readonly manifest: ParsedBundleManifest;
  readonly key: Buffer;
  readonly iv: Buffer;
  /** The manifest's place, for messages. */
  readonly where: string;
}

export async function openBundleManifest(request: BundleManifestRequest): Promise<OpenedBundleManifest> {
  const { store } = request;
  const where = `${store.label}/${checkBundleFileName(request.manifestName, store.label)}`;
  const manifest = parseBundleManifest(
    await store.get(request.manifestName, MAX_MANIFEST_BYTES, request.signal),
    where,
  );
  try {
    if (!request.signatureUnchecked) {
      const given = request.userCertificate ?? createPublicKey(request.privateKey);
      verifySignedByOneOf(manifest, Array.isArray(given) ? given : [given as KeyObject], where);
    }
  } catch (e) {
    // Without a certificate the key given is taken for the signer's: with the cloud's key, that cannot match.
    if (request.userCertificate || !(e instanceof VerificationError)) throw e;
    throw new VerificationError(
      `${e.message}; with the cloud's key, give the bundling user's certificate (-c) to verify the signature`,
    );
  }
  const secret = unwrapBundleSecret(manifest.image, request.privateKey, where);
  return { manifest, key: Buffer.from(secret.key, "hex"), iv: Buffer.from(secret.iv, "hex"), where };
}

/** Throws (the last signer's refusal) unless one of `signers` signed the manifest. */
function verifySignedByOneOf(manifest: ParsedBundleManifest, signers: readonly KeyObject[], where: string): void {
  let refusal: unknown = new VerificationError(`${where}: no certificate to check the manifest's signature with`);
  for (const signer of signers) {
    try {
      verifyManifestText(manifest.signedText, manifest.signature, signer, where);
      return;
    } catch (e) {
      refusal = e;
    }
  }
  throw refusal;
}
