/**
 * The 512-byte tar member header, encoded and decoded by hand because an OVA writer needs exact control over
 * it: DSP0243 asks for USTAR, USTAR's 11 octal digits stop at 8 GiB - 1, and vSphere refuses PAX extended
 * headers (vmware/open-vmdk#65). So a member below the threshold gets a plain USTAR header and a larger one a
 * GNU header whose size field is base-256 (high bit of the first byte set, the size big-endian in the rest),
 * which GNU tar, bsdtar, VirtualBox's and VMware's readers all accept. The header is also written after the
 * member's data (its size is only known then), so encoding is a pure function of the member's fields.
 */
import { CorruptImageError } from "../errors.js";

export const TAR_BLOCK = 512;

/** The largest size USTAR's 11 octal digits can hold: 8 GiB - 1. */
export const USTAR_MAX_SIZE = 8 * 2 ** 30 - 1;

/** Member types chromogenic reads or writes, by their typeflag byte. */
export type TarEntryType =
  | "file"
  | "hardlink"
  | "symlink"
  | "chardev"
  | "blockdev"
  | "directory"
  | "fifo"
  | "gnu-longname"
  | "gnu-longlink"
  | "pax-header"
  | "pax-global"
  | "other";

export type TarFlavour = "ustar" | "gnu";

export interface TarHeaderFields {
  readonly name: string;
  readonly size: number;
  /** Seconds since the epoch. */
  readonly mtime: number;
  readonly mode?: number;
  readonly uname?: string;
  readonly gname?: string;
}

export interface DecodedTarHeader {
  readonly name: string;
  readonly size: number;
  readonly type: TarEntryType;
  readonly typeflag: string;
  readonly linkname: string;
  readonly flavour: TarFlavour | "v7";
  readonly mtime: number;
}

const OFFSETS = {
  name: [0, 100],
  mode: [100, 8],
  uid: [108, 8],
  gid: [116, 8],
  size: [124, 12],
  mtime: [136, 12],
  chksum: [148, 8],
  typeflag: [156, 1],
  linkname: [157, 100],
  magic: [257, 6],
  version: [263, 2],
  uname: [265, 32],
  gname: [297, 32],
  devmajor: [329, 8],
  devminor: [337, 8],
  prefix: [345, 155],
} as const;

/** How many bytes of padding follow `size` bytes of member data. */
export function tarPadding(size: number): number {
  const rest = size % TAR_BLOCK;
  return rest === 0 ? 0 : TAR_BLOCK - rest;
}

/** The flavour a member of `size` bytes needs, with `threshold` the first size that must not be USTAR. */
export function flavourForSize(size: number, threshold = USTAR_MAX_SIZE + 1): TarFlavour {
  return size >= Math.min(threshold, USTAR_MAX_SIZE + 1) ? "gnu" : "ustar";
}

/**
 * Encodes a regular-file header. Names must be ASCII and fit the 100-byte name field: OVA members are flat
 * names chromogenic chooses, and the long-name extensions (GNU ././@LongLink, PAX) are what vSphere trips on.
 */
export function encodeTarHeader(fields: TarHeaderFields, flavour: TarFlavour): Buffer {
  const name = Buffer.from(fields.name, "utf8");
  if (name.length === 0 || name.length > 100 || /[^\x20-\x7e]/.test(fields.name)) {
    throw new RangeError(`tar member name "${fields.name}" must be 1..100 printable ASCII characters`);
  }
  if (!Number.isSafeInteger(fields.size) || fields.size < 0) throw new RangeError(`bad tar member size ${fields.size}`);
  if (flavour === "ustar" && fields.size > USTAR_MAX_SIZE) {
    throw new RangeError(`a USTAR header cannot hold size ${fields.size} (limit ${USTAR_MAX_SIZE})`);
  }
  const h = Buffer.alloc(TAR_BLOCK);
  name.copy(h, OFFSETS.name[0]);
  writeOctal(h, OFFSETS.mode, fields.mode ?? 0o644);
  writeOctal(h, OFFSETS.uid, 0);
  writeOctal(h, OFFSETS.gid, 0);
  if (fields.size <= USTAR_MAX_SIZE) writeOctal(h, OFFSETS.size, fields.size);
  else writeBase256(h, OFFSETS.size, fields.size);
  writeOctal(h, OFFSETS.mtime, Math.max(0, Math.floor(fields.mtime)));
  h.write("0", OFFSETS.typeflag[0], "ascii");
  if (flavour === "ustar") {
    h.write("ustar\0", OFFSETS.magic[0], "ascii");
    h.write("00", OFFSETS.version[0], "ascii");
  } else {
    // GNU's magic runs into the version field: "ustar  \0".
    h.write("ustar ", OFFSETS.magic[0], "ascii");
    h.write(" \0", OFFSETS.version[0], "ascii");
  }
  h.write((fields.uname ?? "").slice(0, 31), OFFSETS.uname[0], "ascii");
  h.write((fields.gname ?? "").slice(0, 31), OFFSETS.gname[0], "ascii");
  writeOctal(h, OFFSETS.devmajor, 0);
  writeOctal(h, OFFSETS.devminor, 0);
  writeChecksum(h);
  return h;
}

/** The header of a block of zeros marks the end of the archive (two such blocks are written). */
export function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

/** Decodes a header, checking its checksum; `where` names it in errors. */
export function decodeTarHeader(block: Buffer, where: string): DecodedTarHeader {
  if (block.length !== TAR_BLOCK) throw new CorruptImageError(`${where}: short tar header`);
  const stored = readOctal(block, OFFSETS.chksum, where, "checksum");
  if (stored !== checksum(block)) {
    throw new CorruptImageError(`${where}: tar header checksum mismatch (not a tar archive, or damaged)`);
  }
  const magic = block.toString("latin1", 257, 265);
  const flavour: DecodedTarHeader["flavour"] =
    magic === "ustar\u000000"
      ? "ustar"
      : magic === "ustar  \u0000"
        ? "gnu"
        : magic.startsWith("ustar")
          ? "ustar"
          : "v7";
  let name = cString(block, OFFSETS.name);
  if (flavour === "ustar") {
    const prefix = cString(block, OFFSETS.prefix);
    if (prefix) name = `${prefix}/${name}`;
  }
  const typeflag = String.fromCharCode(block[OFFSETS.typeflag[0]]!);
  return {
    name,
    size: readNumber(block, OFFSETS.size, where, "size"),
    type: entryType(typeflag),
    typeflag,
    linkname: cString(block, OFFSETS.linkname),
    flavour,
    mtime: readNumber(block, OFFSETS.mtime, where, "mtime"),
  };
}

function entryType(flag: string): TarEntryType {
  switch (flag) {
    case "0":
    case "\0":
    case "7": // contiguous file: a regular file everywhere that matters
      return "file";
    case "1":
      return "hardlink";
    case "2":
      return "symlink";
    case "3":
      return "chardev";
    case "4":
      return "blockdev";
    case "5":
      return "directory";
    case "6":
      return "fifo";
    case "L":
      return "gnu-longname";
    case "K":
      return "gnu-longlink";
    case "x":
      return "pax-header";
    case "g":
      return "pax-global";
    default:
      return "other";
  }
}

function checksum(h: Buffer): number {
  let sum = 0;
  for (let i = 0; i < TAR_BLOCK; i++) {
    sum += i >= OFFSETS.chksum[0] && i < OFFSETS.chksum[0] + OFFSETS.chksum[1] ? 0x20 : h[i]!;
  }
  return sum;
}

/** Six octal digits, NUL, space: what every tar writes. */
function writeChecksum(h: Buffer): void {
  const text = checksum(h).toString(8).padStart(6, "0");
  h.write(`${text}\0 `, OFFSETS.chksum[0], "ascii");
}

function writeOctal(h: Buffer, [at, width]: readonly [number, number], value: number): void {
  const text = value.toString(8).padStart(width - 1, "0");
  if (text.length > width - 1) throw new RangeError(`${value} does not fit ${width - 1} octal digits`);
  h.write(`${text}\0`, at, "ascii");
}

function writeBase256(h: Buffer, [at, width]: readonly [number, number], value: number): void {
  let v = BigInt(value);
  for (let i = at + width - 1; i > at; i--) {
    h[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  h[at] = 0x80;
}

function readNumber(h: Buffer, field: readonly [number, number], where: string, what: string): number {
  const [at, width] = field;
  const first = h[at]!;
  if (first & 0x80) {
    if (first !== 0x80) throw new CorruptImageError(`${where}: negative or oversized base-256 tar ${what}`);
    let v = 0n;
    for (let i = at + 1; i < at + width; i++) v = (v << 8n) | BigInt(h[i]!);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CorruptImageError(`${where}: tar ${what} ${v} is too large`);
    return Number(v);
  }
  return readOctal(h, field, where, what);
}

function readOctal(h: Buffer, [at, width]: readonly [number, number], where: string, what: string): number {
  const text = h
    .toString("latin1", at, at + width)
    .replace(/[\0 ]+$/, "")
    .replace(/^[ ]+/, "");
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) throw new CorruptImageError(`${where}: tar ${what} field "${text}" is not octal`);
  return parseInt(text, 8);
}

function cString(h: Buffer, [at, width]: readonly [number, number]): string {
  const field = h.subarray(at, at + width);
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? width : nul).toString("utf8");
}
