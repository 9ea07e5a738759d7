/**
 * Hostile bundles for the tests: any tar bytes made into a correctly encrypted, correctly signed bundle (so the
 * reader's later checks are what must catch them), and an existing manifest changed and signed again.
 */
import { createCipheriv, createHash } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import type { BundleManifest } from "../../src/formats/bundle/bundle-manifest.js";
import { bundleManifestName, bundlePartName } from "../../src/formats/bundle/bundle-manifest.js";
import {
  randomBundleSecret,
  readPrivateKey,
  readPublicKey,
  signManifestText,
  wrapHex,
} from "../../src/formats/bundle/bundle-keys.js";
import { signedManifestText, writeManifest } from "../../src/formats/bundle/manifest-writer.js";
import { parseBundleManifest } from "../../src/formats/bundle/manifest-parser.js";
import { TAR_BLOCK, encodeTarHeader, tarPadding } from "../../src/formats/ova/tar-header.js";
import { withTarChecksum } from "../../src/formats/bundle/image-tar-stream.js";
import type { BundleKeys } from "./euca2ools.js";

type Unsigned = Omit<BundleManifest, "signature" | "bundler">;

async function sign(dir: string, manifest: Unsigned, keys: BundleKeys): Promise<string> {
  const signed = signedManifestText(manifest);
  const signature = signManifestText(signed, await readPrivateKey(keys.userKey));
  const name = bundleManifestName(manifest.image.name);
  await writeFile(
    join(dir, name),
    writeManifest({ ...manifest, bundler: { name: "test", version: "0", release: "0" }, signature }, signed),
  );
  return join(dir, name);
}

/** Writes `tar` as a bundle named `name` declaring an image of `size` bytes; returns the manifest's path. */
export async function craftBundle(dir: string, keys: BundleKeys, tar: Buffer, size: number, name = "evil.img") {
  const secret = randomBundleSecret();
  const cipher = createCipheriv("aes-128-cbc", Buffer.from(secret.key, "hex"), Buffer.from(secret.iv, "hex"));
  const encrypted = Buffer.concat([cipher.update(gzipSync(tar)), cipher.final()]);
  const parts = [];
  for (let at = 0, i = 0; at < encrypted.length; at += 2 ** 20, i++) {
    const data = encrypted.subarray(at, at + 2 ** 20);
    const filename = bundlePartName(name, i);
    await writeFile(join(dir, filename), data);
    parts.push({ filename, digest: createHash("sha1").update(data).digest("hex") });
  }
  const [user, cloud] = await Promise.all([readPublicKey(keys.userCert), readPublicKey(keys.cloudCert)]);
  return sign(
    dir,
    {
      machineConfiguration: { architecture: "x86_64", blockDeviceMappings: [], productCodes: [] },
      image: {
        name,
        user: "123456789012",
        type: "machine",
        digest: createHash("sha1").update(tar).digest("hex"),
        size,
        bundledSize: encrypted.length,
        ec2EncryptedKey: wrapHex(secret.key, cloud),
        userEncryptedKey: wrapHex(secret.key, user),
        ec2EncryptedIv: wrapHex(secret.iv, cloud),
        userEncryptedIv: wrapHex(secret.iv, user),
        parts,
      },
    },
    keys,
  );
}

/** Changes a bundle's manifest and signs it again with the user's key, so only the change can be refused. */
export async function resign(manifestPath: string, keys: BundleKeys, change: (m: Unsigned) => Unsigned): Promise<void> {
  const parsed = parseBundleManifest(await readFile(manifestPath), manifestPath);
  await sign(join(manifestPath, ".."), change(parsed), keys);
}

/** A tar member header, with a type and link name of choice (a symlink, a device…). */
export function tarHeader(name: string, size: number, typeflag = "0", linkname = ""): Buffer {
  const header = encodeTarHeader({ name, size, mtime: 0 }, "ustar");
  header.write(typeflag, 156, "ascii");
  header.write(linkname, 157, "ascii");
  return withTarChecksum(header);
}

/** A whole tar: one header, its data padded, two end blocks, plus `trailing` zero bytes. */
export function tarOf(header: Buffer, data: Buffer, trailing = 0): Buffer {
  return Buffer.concat([header, data, Buffer.alloc(tarPadding(data.length) + 2 * TAR_BLOCK + trailing)]);
}
