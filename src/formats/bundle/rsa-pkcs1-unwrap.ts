/**
 * RSA PKCS#1 v1.5 decryption done by hand, for the Node versions that refuse RSA_PKCS1_PADDING in privateDecrypt
 * (≥ 20.11 without OpenSSL's implicit rejection; CVE-2023-46809). The Marvin attack behind that refusal needs an
 * oracle answering many chosen ciphertexts; a bundle's key is unwrapped once per run from a manifest the user
 * chose, so none exists here. The arithmetic is a BigInt modular power with the key's CRT parameters (from its
 * JWK export), bounded by the key's size; the unpadding checks the whole EM layout.
 */
import type { KeyObject } from "node:crypto";

function bigint(base64url: string | undefined): bigint {
  if (!base64url) throw new Error("not an RSA private key");
  const hex = Buffer.from(base64url, "base64url").toString("hex");
  return BigInt(`0x${hex || "0"}`);
}

function modPow(base: bigint, exponent: bigint, modulus: bigint): bigint {
  let result = 1n;
  let b = base % modulus;
  let e = exponent;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % modulus;
    b = (b * b) % modulus;
    e >>= 1n;
  }
  return result;
}

/** The message inside `ciphertext`, or undefined when its padding is not PKCS#1 v1.5 type 2 (a wrong key). */
export function rsaPkcs1Decrypt(privateKey: KeyObject, ciphertext: Buffer): Buffer | undefined {
  const jwk = privateKey.export({ format: "jwk" });
  if (jwk.kty !== "RSA") return undefined;
  const n = bigint(jwk.n);
  const k = Buffer.from(jwk.n!, "base64url").length;
  if (ciphertext.length !== k || k > 2048) return undefined;
  const c = BigInt(`0x${ciphertext.toString("hex")}`);
  if (c >= n) return undefined;
  const [p, q, dp, dq, qi] = [jwk.p, jwk.q, jwk.dp, jwk.dq, jwk.qi].map(bigint) as [
    bigint,
    bigint,
    bigint,
    bigint,
    bigint,
  ];
  // Chinese remainder theorem: two half-size powers instead of one full one.
  const m1 = modPow(c, dp, p);
  const m2 = modPow(c, dq, q);
  const h = (qi * (((m1 - m2) % p) + p)) % p;
  const m = m2 + h * q;
  const em = Buffer.from(m.toString(16).padStart(k * 2, "0"), "hex");
  if (em.length !== k || em[0] !== 0 || em[1] !== 2) return undefined;
  const separator = em.indexOf(0, 2);
  if (separator < 10) return undefined;
  return em.subarray(separator + 1);
}
