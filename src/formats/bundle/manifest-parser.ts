/**
 * Reads a bundle manifest strictly: it comes from a bucket anyone with write access to it could have filled, and
 * it names the files we then open and the sizes we then allocate. So the XML is bounded and refused with a DTD or
 * entity declarations before any parser sees it; every field the bundle needs is present, of the right shape
 * (hex of the right length, plain file names, counts that agree with each other); and the exact bytes the
 * signature covers are located in the file itself, not rebuilt from the parsed values.
 */
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { CorruptImageError } from "../errors.js";
import {
  BUNDLE_IMAGE_TYPES,
  BUNDLE_PART_SIZE,
  type BundleImageType,
  type BundlePart,
  type ParsedBundleManifest,
} from "./bundle-manifest.js";
import { checkBundleFileName } from "./bundle-file-name.js";

/** A part's entry is about 130 bytes, so the most parts allowed fit in 13 MB; 16 MiB bounds the whole file. */
export const MAX_MANIFEST_BYTES = 16 * 2 ** 20;
/** 100,000 parts of 10 MiB: a 1 TiB bundle, beyond any image EC2 or Eucalyptus registers. */
export const MAX_BUNDLE_PARTS = 100_000;
const MAX_XML_DEPTH = 16;
/** The largest RSA key we wrap for: 16384 bits, as hex of the ciphertext. */
const MAX_WRAPPED_HEX = (16384 / 8) * 2;
/** Room for the tar header and end blocks, gzip's framing and AES padding over an image that does not compress. */
export function maxBundledSize(imageSize: number): number {
  return Math.ceil(imageSize * 1.01) + 64 * 1024;
}

type XmlNode = Record<string, unknown>;

export function parseBundleManifest(bytes: Uint8Array, where: string): ParsedBundleManifest {
  if (bytes.length > MAX_MANIFEST_BYTES) {
    throw new CorruptImageError(
      `${where}: manifest of ${bytes.length} bytes is beyond the ${MAX_MANIFEST_BYTES}-byte limit`,
    );
  }
  const raw = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const xml = raw.toString("latin1");
  // Declarations of any kind (DOCTYPE, ENTITY, ELEMENT): a manifest never has them, and entities are how XML
  // bombs and external file reads get in. Refused before the parser runs.
  if (/<!(?!--)/.test(xml)) {
    throw new CorruptImageError(
      `${where}: manifest declares a DTD or entities (or CDATA), which a bundle manifest never has; refused`,
    );
  }
  // eslint-disable-next-line no-control-regex -- control characters are what the pattern looks for
  if (/[^\x09\x0a\x0d\x20-\x7e]/.test(xml)) {
    throw new CorruptImageError(`${where}: manifest is not ASCII, as every bundle writer writes it`);
  }
  const valid = XMLValidator.validate(xml);
  if (valid !== true) {
    throw new CorruptImageError(`${where}: manifest is not well-formed XML (line ${valid.err.line}: ${valid.err.msg})`);
  }
  const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: "@",
    parseTagValue: false,
    parseAttributeValue: false,
    trimValues: true,
    processEntities: true,
    htmlEntities: false,
    isArray: (name) =>
      name === "part" || name === "mapping" || name === "product_code" || name === "block_device_mapping",
    maxNestedTags: MAX_XML_DEPTH,
  });
  let doc: XmlNode;
  try {
    doc = parser.parse(xml) as XmlNode;
  } catch (e) {
    throw new CorruptImageError(`${where}: manifest cannot be read: ${(e as Error).message}`, { cause: e });
  }
  const fail = (what: string): never => {
    throw new CorruptImageError(`${where}: manifest ${what}`);
  };
  const manifest = node(doc.manifest) ?? fail("has no <manifest> root element");
  if (text(manifest, "version") !== "2007-10-10")
    fail(`version "${text(manifest, "version") ?? ""}" is not 2007-10-10`);
  const bundler = node(manifest.bundler);
  const config = node(manifest.machine_configuration) ?? fail("has no <machine_configuration>");
  const image = node(manifest.image) ?? fail("has no <image>");

  const architecture = text(config, "architecture") ?? fail("has no <architecture>");
  const blockDeviceMappings: [string, string][] = [];
  // The writers (euca2ools, ec2-ami-tools) say block_device_mapping/mapping; euca2ools' reader looked for the
  // plural, which nothing writes.
  for (const group of list(config.block_device_mapping)) {
    for (const mapping of list(node(group)?.mapping)) {
      const m = node(mapping) ?? fail("has an empty block device mapping");
      blockDeviceMappings.push([
        text(m, "virtual") ?? fail("has a mapping without <virtual>"),
        text(m, "device") ?? fail("has a mapping without <device>"),
      ]);
    }
  }
  const productCodes = list(node(config.product_codes)?.product_code).map((c) =>
    typeof c === "string" ? c : fail("has a malformed <product_code>"),
  );

  const type = (text(image, "type") ?? fail("has no image <type>")) as BundleImageType;
  if (!BUNDLE_IMAGE_TYPES.includes(type)) fail(`image type "${type}" is not machine, kernel or ramdisk`);
  const size = count(text(image, "size"), "size", fail);
  const bundledSize = count(text(image, "bundled_size"), "bundled_size", fail);
  if (bundledSize > maxBundledSize(size)) {
    fail(`bundled_size ${bundledSize} is far more than an image of ${size} bytes can make`);
  }
  const partsNode = node(image.parts) ?? fail("has no <parts>");
  const declaredCount = count(attribute(partsNode, "count"), "parts count", fail);
  const partNodes = list(partsNode.part);
  if (declaredCount > MAX_BUNDLE_PARTS || partNodes.length > MAX_BUNDLE_PARTS) {
    fail(`has more than ${MAX_BUNDLE_PARTS} parts`);
  }
  if (partNodes.length !== declaredCount) {
    fail(`says count="${declaredCount}" but lists ${partNodes.length} parts`);
  }
  // Each part but the last holds at most a part's size, so the parts' number follows from bundled_size.
  const fewestParts = Math.max(1, Math.ceil(bundledSize / BUNDLE_PART_SIZE));
  if (declaredCount < fewestParts && bundledSize > 0) {
    fail(`lists ${declaredCount} parts, too few for ${bundledSize} bundled bytes`);
  }
  if (declaredCount > Math.max(1, bundledSize)) fail(`lists ${declaredCount} parts for ${bundledSize} bundled bytes`);
  const parts: (BundlePart | undefined)[] = new Array(declaredCount);
  const names = new Set<string>();
  for (const p of partNodes) {
    const part = node(p) ?? fail("has an empty <part>");
    const index = count(attribute(part, "index"), "part index", fail);
    if (index >= declaredCount || parts[index]) fail(`has a part index ${index} out of range or repeated`);
    const filename = checkBundleFileName(text(part, "filename") ?? fail(`part ${index} has no <filename>`), where);
    if (names.has(filename)) fail(`names the file ${filename} for two parts`);
    names.add(filename);
    parts[index] = { filename, digest: sha1Hex(part, "digest", `part ${index}`, fail) };
  }

  return {
    bundler: {
      name: (bundler && text(bundler, "name")) ?? "",
      version: (bundler && text(bundler, "version")) ?? "",
      release: (bundler && text(bundler, "release")) ?? "",
    },
    machineConfiguration: {
      architecture,
      blockDeviceMappings,
      productCodes,
      kernelId: text(config, "kernel_id"),
      ramdiskId: text(config, "ramdisk_id"),
    },
    image: {
      name: text(image, "name") ?? fail("has no image <name>"),
      user: text(image, "user") ?? fail("has no image <user>"),
      type,
      digest: sha1Hex(image, "digest", "image", fail),
      size,
      bundledSize,
      ec2EncryptedKey: wrappedHex(image, "ec2_encrypted_key", fail),
      userEncryptedKey: wrappedHex(image, "user_encrypted_key", fail),
      ec2EncryptedIv: wrappedHex(image, "ec2_encrypted_iv", fail),
      userEncryptedIv: wrappedHex(image, "user_encrypted_iv", fail),
      parts: parts as BundlePart[],
    },
    signature: hexField(text(manifest, "signature"), "signature", MAX_WRAPPED_HEX, fail) ?? fail("is not signed"),
    signedText: signedBytes(raw, xml, fail),
  };
}

/**
 * The bytes the signature covers: the `<machine_configuration>` element and the `<image>` element as written,
 * concatenated (whatever whitespace lies between them is not signed). Each must appear exactly once.
 */
function signedBytes(raw: Buffer, xml: string, fail: (what: string) => never): Buffer {
  const one = (open: string, close: string): [number, number] => {
    const start = xml.indexOf(open);
    const end = xml.indexOf(close);
    if (start < 0 || end < start || xml.indexOf(open, start + 1) >= 0 || xml.indexOf(close, end + 1) >= 0) {
      fail(`must hold exactly one ${open}…${close}`);
    }
    return [start, end + close.length];
  };
  const [configStart, configEnd] = one("<machine_configuration>", "</machine_configuration>");
  const [imageStart, imageEnd] = one("<image>", "</image>");
  if (imageStart < configEnd || xml.slice(configEnd, imageStart).trim() !== "") {
    fail("must have <image> right after <machine_configuration>");
  }
  return Buffer.concat([raw.subarray(configStart, configEnd), raw.subarray(imageStart, imageEnd)]);
}

function node(value: unknown): XmlNode | undefined {
  return value && typeof value === "object" && !Array.isArray(value) ? (value as XmlNode) : undefined;
}

function list(value: unknown): unknown[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

/** An element's text: a bare string, or `#text` beside attributes. Undefined when absent or empty. */
function text(parent: XmlNode, name: string): string | undefined {
  const value = parent[name];
  const content = typeof value === "string" ? value : (node(value)?.["#text"] as string | undefined);
  return typeof content === "string" && content !== "" ? content : undefined;
}

function attribute(parent: XmlNode, name: string): string | undefined {
  const value = parent[`@${name}`];
  return typeof value === "string" ? value : undefined;
}

function count(value: string | undefined, what: string, fail: (what: string) => never): number {
  if (value === undefined || !/^\d{1,15}$/.test(value)) fail(`has no valid ${what} ("${value ?? ""}")`);
  return Number(value);
}

function hexField(
  value: string | undefined,
  what: string,
  maxLength: number,
  fail: (what: string) => never,
): string | undefined {
  if (value === undefined) return undefined;
  if (value.length > maxLength || value.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(value)) {
    fail(`has a ${what} that is not hex of a sensible length`);
  }
  return value.toLowerCase();
}

function sha1Hex(parent: XmlNode, name: string, what: string, fail: (what: string) => never): string {
  const digestNode = parent[name];
  const algorithm = node(digestNode)?.["@algorithm"];
  if (algorithm !== undefined && String(algorithm).toUpperCase() !== "SHA1") {
    fail(`${what} digest algorithm "${String(algorithm)}" is not SHA1`);
  }
  const value = text(parent, name);
  if (value === undefined || !/^[0-9a-fA-F]{40}$/.test(value)) fail(`${what} digest is not 40 hex digits`);
  return value.toLowerCase();
}

function wrappedHex(parent: XmlNode, name: string, fail: (what: string) => never): string {
  const algorithm = node(parent[name])?.["@algorithm"];
  if (algorithm !== undefined && algorithm !== "AES-128-CBC") {
    fail(`${name} algorithm "${String(algorithm)}" is not AES-128-CBC`);
  }
  // Empty is allowed here (a bundle made without a user certificate); unwrapping then tries the other field.
  return hexField(text(parent, name), name, MAX_WRAPPED_HEX, fail) ?? "";
}
