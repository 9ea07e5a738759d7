/**
 * Writes a bundle manifest byte for byte in the shape euca2ools 3.4 gives it (lxml, no pretty printing, ASCII with
 * character references): the element order matters to EC2, which wants `<type>` right after `<user>`, and the
 * signature covers the exact text of `<machine_configuration>` and `<image>`, so that text is built once and both
 * signed and written.
 */
import type { BundleImage, BundleManifest, MachineConfiguration } from "./bundle-manifest.js";

/** Escapes text as lxml does in an ASCII document: markup characters as entities, non-ASCII as references. */
function xmlText(value: string | number): string {
  // eslint-disable-next-line no-control-regex -- control characters are what the pattern looks for
  return String(value).replace(/[&<>]|[^\x00-\x7f]/gu, (c) => {
    switch (c) {
      case "&":
        return "&amp;";
      case "<":
        return "&lt;";
      case ">":
        return "&gt;";
      default:
        return `&#${c.codePointAt(0)!};`;
    }
  });
}

function element(name: string, content: string, attributes = ""): string {
  return `<${name}${attributes}>${content}</${name}>`;
}

function textElement(name: string, value: string | number, attributes = ""): string {
  return element(name, xmlText(value), attributes);
}

export function machineConfigurationXml(config: MachineConfiguration, imageType: BundleImage["type"]): string {
  let inner = textElement("architecture", config.architecture);
  if (imageType === "machine") {
    if (config.blockDeviceMappings.length) {
      const mappings = config.blockDeviceMappings.map(([virtual, device]) =>
        element("mapping", textElement("virtual", virtual) + textElement("device", device)),
      );
      inner += element("block_device_mapping", mappings.join(""));
    }
    if (config.productCodes.length) {
      inner += element("product_codes", config.productCodes.map((c) => textElement("product_code", c)).join(""));
    }
  }
  // Written for every type: Eucalyptus marks a kernel or ramdisk image with the value "true" here.
  if (config.kernelId) inner += textElement("kernel_id", config.kernelId);
  if (config.ramdiskId) inner += textElement("ramdisk_id", config.ramdiskId);
  return element("machine_configuration", inner);
}

const AES = ' algorithm="AES-128-CBC"';
const SHA1 = ' algorithm="SHA1"';

export function imageXml(image: BundleImage): string {
  const parts = image.parts.map((part, index) =>
    element(
      "part",
      textElement("filename", part.filename) + textElement("digest", part.digest, SHA1),
      ` index="${index}"`,
    ),
  );
  return element(
    "image",
    textElement("name", image.name) +
      textElement("user", image.user) +
      textElement("type", image.type) +
      textElement("digest", image.digest, SHA1) +
      textElement("size", image.size) +
      textElement("bundled_size", image.bundledSize) +
      textElement("ec2_encrypted_key", image.ec2EncryptedKey, AES) +
      textElement("user_encrypted_key", image.userEncryptedKey, AES) +
      textElement("ec2_encrypted_iv", image.ec2EncryptedIv) +
      textElement("user_encrypted_iv", image.userEncryptedIv) +
      element("parts", parts.join(""), ` count="${image.parts.length}"`),
  );
}

/** The bytes the signature covers. */
export function signedManifestText(manifest: Omit<BundleManifest, "signature" | "bundler">): Buffer {
  return Buffer.from(
    machineConfigurationXml(manifest.machineConfiguration, manifest.image.type) + imageXml(manifest.image),
    "ascii",
  );
}

/** The whole manifest file, given the signed text already made (so that what is signed is what is written). */
export function writeManifest(manifest: BundleManifest, signedText: Buffer): Buffer {
  const bundler =
    textElement("name", manifest.bundler.name) +
    textElement("version", manifest.bundler.version) +
    textElement("release", manifest.bundler.release);
  return Buffer.concat([
    Buffer.from(
      "<?xml version='1.0' encoding='ASCII'?>\n<manifest>" +
        textElement("version", "2007-10-10") +
        element("bundler", bundler),
      "ascii",
    ),
    signedText,
    Buffer.from(textElement("signature", manifest.signature) + "</manifest>", "ascii"),
  ]);
}
