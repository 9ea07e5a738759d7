/**
 * Formats chromogenic recognises only to refuse them. Any file is a valid raw disk, so without this table a
 * QED image, a LUKS volume or a disk still inside its .gz would be "raw" and `convert` would copy the
 * container's own bytes as if they were a guest's disk. Like Glance's format inspector, detection names what
 * the file really is instead; raw is what remains when nothing matched, and opening with format raw (`-f raw`)
 * skips detection, so nothing is refused then.
 *
 * The disk formats are those qemu's block drivers probe for and chromogenic does not read (block/bochs.c,
 * cloop.c, crypto.c, dmg.c, parallels.c, qcow.c, qed.c) plus Bochs's own sparse layout; the containers are the
 * compressors and archives disk images are commonly shipped in. Signatures are checked with enough bytes that
 * an ordinary raw disk (boot code, a filesystem, zeros, random data) does not match by chance.
 */
import type { ProbeInput } from "./types.js";
import { UnreadableFormatError } from "./errors.js";
import { classifyTarHead } from "./ova/ova-detect.js";

export interface ForeignFormat {
  /** The name users and qemu know it by, as the refusal says it ("QED", "gzip"). */
  readonly name: string;
  /** A disk format chromogenic does not read, or a container a disk may be inside. */
  readonly kind: "disk image" | "compressed file" | "archive";
  /** What the file is, as a noun phrase with its article ("a QED image", "an xz-compressed file"). */
  readonly description: string;
  /** What the user can do instead, completing the refusal. */
  readonly remedy: string;
}

interface ForeignSignature extends ForeignFormat {
  /** Whether the signature is in the file's head or in its last 512 bytes (DMG's trailer). */
  readonly at: "head" | "tail";
  readonly matches: (bytes: Buffer) => boolean;
}

/** Bytes of the tail the tail signatures look at. */
const TAIL_BYTES = 512;

const startsWith = (bytes: Buffer, signature: readonly number[] | string, at = 0): boolean => {
  const wanted = typeof signature === "string" ? Buffer.from(signature, "latin1") : Buffer.from(signature);
  return bytes.length >= at + wanted.length && bytes.subarray(at, at + wanted.length).equals(wanted);
};

/** A NUL-terminated string field of `width` bytes at `at`, as the Bochs header stores its magic and types. */
const cField = (bytes: Buffer, at: number, width: number): string => {
  const field = bytes.subarray(at, at + width);
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? field.length : nul).toString("latin1");
};

const convertWithQemu = (qemuName: string) =>
  `qemu-img can convert it to a format chromogenic reads (qemu-img convert -f ${qemuName} -O qcow2 …)`;

const image = (
  name: string,
  description: string,
  remedy: string,
  matches: (head: Buffer) => boolean,
  at: "head" | "tail" = "head",
): ForeignSignature => ({ name, kind: "disk image", description, remedy, at, matches });

const compressed = (name: string, tool: string, matches: (head: Buffer) => boolean): ForeignSignature => ({
  name,
  kind: "compressed file",
  description: `${name === "xz" ? "an" : "a"} ${name}-compressed file`,
  remedy: `decompress it first (${tool}) and open the result`,
  at: "head",
  matches,
});

const archive = (name: string, tool: string, matches: (head: Buffer) => boolean): ForeignSignature => ({
  name,
  kind: "archive",
  description: `a ${name} archive`,
  remedy: `extract the disk from it first (${tool}) and open that`,
  at: "head",
  matches,
});

/**
 * The table, in the order it is consulted: disk formats before containers, because a DMG's data may well
 * start with a bzip2 stream and only its trailer says it is a DMG.
 */
const SIGNATURES: readonly ForeignSignature[] = [
  // qcow.c: magic "QFI\xfb" and big-endian version 1 (qcow2 shares the magic with versions 2 and 3).
  image("qcow", "a qcow (version 1) image", convertWithQemu("qcow"), (h) =>
    startsWith(h, [0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 1]),
  ),
  // qed.c: little-endian magic 0x00444551, the bytes "QED\0".
  image("QED", "a QED image", convertWithQemu("qed"), (h) => startsWith(h, "QED\0")),
  // parallels.c: a 16-byte magic, the second for images that may exceed 2 TiB.
  image(
    "Parallels",
    "a Parallels image",
    convertWithQemu("parallels"),
    (h) => startsWith(h, "WithoutFreeSpace") || startsWith(h, "WithouFreSpacExt"),
  ),
  // crypto.c / crypto/block-luks.c: "LUKS\xba\xbe" then a big-endian version: 1 (what qemu reads) or 2.
  image(
    "LUKS",
    "a LUKS-encrypted volume",
    "decrypt it first (qemu-img convert with --object secret for LUKS1, cryptsetup for LUKS2)",
    (h) => startsWith(h, [0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe]) && h.length >= 8 && [1, 2].includes(h.readUInt16BE(6)),
  ),
  // bochs.c: a 512-byte header whose NUL-terminated magic and type are "Bochs Virtual HD Image" and "Redolog";
  // qemu reads the "Growing" subtype, Bochs also writes "Undoable" and "Volatile" redologs.
  image(
    "Bochs",
    "a Bochs redolog image",
    convertWithQemu("bochs"),
    (h) => cField(h, 0, 32) === "Bochs Virtual HD Image" && cField(h, 32, 16) === "Redolog",
  ),
  // Bochs's own sparse layout (iodev/hdimage/hdimage.h), which qemu does not read: little-endian magic
  // 0x02468ace, then version 1 or 2.
  image(
    "Bochs sparse",
    "a Bochs sparse image",
    "convert it with Bochs's bximage first (bximage -func=convert -imgmode=flat)",
    (h) => h.length >= 8 && h.readUInt32LE(0) === 0x02468ace && [1, 2].includes(h.readUInt32LE(4)),
  ),
  // cloop.c: a shell-script preamble naming the format version ("#V2.0 Format", the one qemu reads).
  image("cloop", "a cloop (compressed loop) image", "extract it first (extract_compressed_fs from cloop-utils)", (h) =>
    /^#!\/bin\/sh\n#V\d+\.\d+ Format\nmodprobe cloop /.test(h.toString("latin1", 0, 64)),
  ),
  // dmg.c finds the UDIF trailer, 512 bytes starting "koly", at the end of the file; its version is 4 and its
  // size field 512 (https://keramics.github.io/udif.html, "File footer").
  image(
    "DMG",
    "a DMG (Apple UDIF) image",
    convertWithQemu("dmg"),
    (t) => startsWith(t, "koly") && t.length >= 12 && t.readUInt32BE(4) === 4 && t.readUInt32BE(8) === 512,
    "tail",
  ),
  // RFC 1952: ID1 ID2 and deflate (8), with the reserved flag bits clear.
  compressed("gzip", "gunzip -k", (h) => startsWith(h, [0x1f, 0x8b, 0x08]) && h.length >= 4 && (h[3]! & 0xe0) === 0),
  // The xz file format: a six-byte magic.
  compressed("xz", "unxz -k", (h) => startsWith(h, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])),
  // bzip2: "BZh", the block size digit, then the first block's magic (pi) or the end-of-stream one (sqrt pi).
  compressed(
    "bzip2",
    "bunzip2 -k",
    (h) =>
      /^BZh[1-9]$/.test(h.toString("latin1", 0, 4)) &&
      (startsWith(h, [0x31, 0x41, 0x59, 0x26, 0x53, 0x59], 4) ||
        startsWith(h, [0x17, 0x72, 0x45, 0x38, 0x50, 0x90], 4)),
  ),
  // RFC 8878: a frame's little-endian magic 0xfd2fb528, or a skippable frame's 0x184d2a50..5f (pzstd starts so).
  compressed(
    "zstd",
    "unzstd",
    (h) => h.length >= 4 && (h.readUInt32LE(0) === 0xfd2fb528 || (h.readUInt32LE(0) & 0xfffffff0) === 0x184d2a50),
  ),
  // LZ4's frame format (0x184d2204) and the legacy format `lz4 -l` and the Linux kernel use (0x184c2102).
  compressed(
    "lz4",
    "unlz4",
    (h) => h.length >= 4 && (h.readUInt32LE(0) === 0x184d2204 || h.readUInt32LE(0) === 0x184c2102),
  ),
  // PKWARE's APPNOTE: a local file header, an empty archive's end record, or a split archive's marker.
  archive("zip", "unzip", (h) => ["PK\x03\x04", "PK\x05\x06", "PK\x07\x08"].some((m) => startsWith(h, m))),
  // 7z: a six-byte signature.
  archive("7z", "7z x", (h) => startsWith(h, [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c])),
  // A tar header with a valid checksum whose first member is not an .ovf descriptor: an OVA is read as one.
  {
    ...archive("tar", "tar -xf", (h) => classifyTarHead(h) === "tar"),
    remedy: "extract the disk from it first (tar -xf) and open that; an OVA would have its .ovf descriptor first",
  },
];

/**
 * The foreign format the file is in, or undefined when it matches none (then it is a raw disk). When the
 * input cannot show its tail (a stream read once, in order), the trailer signatures are skipped.
 */
export async function recogniseForeignFormat(input: ProbeInput): Promise<ForeignFormat | undefined> {
  let tail: Buffer | null | undefined;
  for (const signature of SIGNATURES) {
    let bytes = input.head;
    if (signature.at === "tail") {
      // An input read only in order rejects (or throws from) readTail: the trailer signatures are skipped.
      if (tail === undefined)
        tail =
          input.size >= TAIL_BYTES
            ? await Promise.resolve()
                .then(() => input.readTail(TAIL_BYTES))
                .catch(() => null)
            : null;
      if (tail === null) continue;
      bytes = tail;
    }
    if (signature.matches(bytes)) {
      const { name, kind, description, remedy } = signature;
      return { name, kind, description, remedy };
    }
  }
  return undefined;
}

/** The refusal of a file in a foreign format; `where` names the file. */
export function unreadableFormatError(where: string, format: ForeignFormat): UnreadableFormatError {
  const what =
    format.kind === "disk image"
      ? `this is ${format.description}; chromogenic does not read ${format.name}`
      : `this is ${format.description}, not a disk image`;
  return new UnreadableFormatError(
    `${where}: ${what}; ${format.remedy}. If it is a raw disk after all, open it as raw (-f raw).`,
    format.name,
  );
}
