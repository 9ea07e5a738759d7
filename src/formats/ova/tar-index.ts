/**
 * Lists the members of a tar archive by reading only its headers (each member's data is skipped, not read),
 * refusing what an OVA never legitimately holds and what could trick an extractor or a reader:
 * names that are absolute, contain "..", backslashes or control characters; hard and symbolic links; devices
 * and FIFOs; a member whose data runs past the end of the archive; two members with one name; more members
 * than any appliance has. GNU long names and PAX `path`/`size` records are honoured (so this reader sees the
 * same names and sizes as GNU tar would) within small caps.
 */
import { CorruptImageError, UnsupportedFeatureError } from "../errors.js";
import type { ImageInput } from "../inputs/image-input.js";
import { TAR_BLOCK, decodeTarHeader, isZeroBlock, tarPadding } from "./tar-header.js";

export interface TarMember {
  readonly name: string;
  /** Offset of the member's data in the archive. */
  readonly dataOffset: number;
  readonly size: number;
  /** Offset of the member's (last) header block. */
  readonly headerOffset: number;
  readonly flavour: "ustar" | "gnu" | "v7";
}

/** An OVA holds a descriptor, a manifest, a certificate and the disks: a few dozen members at most. */
export const MAX_TAR_MEMBERS = 10_000;
/** GNU long-name and PAX records are a few hundred bytes; anything bigger is not a name. */
const MAX_EXTENSION_BYTES = 64 * 1024;

/**
 * Walks a tar archive's members in order, one header after another, without reading their data: on an input
 * read once in order (an OVA on a pipe) the caller reads a member's data, if it wants it, before asking for the
 * next member, and the data it leaves is skipped.
 */
export class TarWalker {
  private position = 0;
  private ended = false;
  private readonly names = new Set<string>();
  private count = 0;

  constructor(
    private readonly file: ImageInput,
    private readonly where = file.path,
  ) {}

  /** The next regular-file member, or undefined at the end of the archive. */
  async next(): Promise<TarMember | undefined> {
    const { file, where } = this;
    let longName: string | undefined;
    let pax: Record<string, string> = {};
    while (!this.ended) {
      const pos = this.position;
      const block = await file.readPadded(pos, TAR_BLOCK);
      // On a pipe the archive's length is known once it has ended, so a member cut short shows here.
      if (pos > file.size) throw new CorruptImageError(`${where}: tar archive ends inside a member's data`);
      if (pos === file.size) break; // tolerated: an archive cut right after a member, without end blocks
      if (pos + TAR_BLOCK > file.size) throw new CorruptImageError(`${where}: tar archive ends inside a header`);
      if (isZeroBlock(block)) break;
      const h = decodeTarHeader(block, `${where} (header at offset ${pos})`);
      const dataOffset = pos + TAR_BLOCK;
      const size = pax.size !== undefined ? parsePaxSize(pax.size, where) : h.size;
      if (dataOffset + size > file.size) {
        throw new CorruptImageError(
          `${where}: member "${h.name}" claims ${size} bytes but the archive ends ${file.size - dataOffset} bytes after its header`,
        );
      }
      this.position = dataOffset + size + tarPadding(size);
      switch (h.type) {
        case "gnu-longname":
          longName = (await readExtension(file, dataOffset, size, where, "GNU long name")).replace(/\0+$/, "");
          continue;
        case "pax-header":
          pax = parsePax(await readExtension(file, dataOffset, size, where, "PAX header"), where);
          continue;
        case "pax-global":
          continue;
        case "directory":
          longName = undefined;
          pax = {};
          continue;
        case "hardlink":
        case "symlink":
        case "gnu-longlink":
          throw new CorruptImageError(`${where}: member "${h.name}" is a link; an OVA holds regular files only`);
        case "chardev":
        case "blockdev":
        case "fifo":
          throw new CorruptImageError(
            `${where}: member "${h.name}" is a device or FIFO; an OVA holds regular files only`,
          );
        case "other":
          throw new UnsupportedFeatureError(
            `${where}: member "${h.name}" has tar type "${h.typeflag}", which is not a regular file`,
          );
        case "file":
          break;
      }
      const name = normaliseName(pax.path ?? longName ?? h.name, where);
      if (this.names.has(name)) throw new CorruptImageError(`${where}: two members are named "${name}"`);
      this.names.add(name);
      if (++this.count > MAX_TAR_MEMBERS) throw new CorruptImageError(`${where}: more than ${MAX_TAR_MEMBERS} members`);
      return { name, dataOffset, size, headerOffset: pos, flavour: h.flavour };
    }
    this.ended = true;
    return undefined;
  }
}

/** Every member of the archive, in order. */
export async function indexTar(file: ImageInput, where = file.path): Promise<TarMember[]> {
  const walker = new TarWalker(file, where);
  const members: TarMember[] = [];
  for (let m = await walker.next(); m; m = await walker.next()) members.push(m);
  return members;
}

/** "./name" is how some tools write flat members; anything that could leave the extraction folder is refused. */
export function normaliseName(raw: string, where: string): string {
  const name = raw.replace(/^(\.\/)+/, "");
  if (
    name === "" ||
    name.startsWith("/") ||
    name.includes("\\") ||
    hasControlCharacter(name) ||
    name.split("/").some((part) => part === ".." || part === ".")
  ) {
    throw new CorruptImageError(
      `${where}: member name "${raw}" is absolute, contains "..", or has forbidden characters`,
    );
  }
  return name;
}

function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

async function readExtension(
  file: ImageInput,
  offset: number,
  size: number,
  where: string,
  what: string,
): Promise<string> {
  if (size > MAX_EXTENSION_BYTES)
    throw new CorruptImageError(`${where}: ${what} of ${size} bytes is beyond ${MAX_EXTENSION_BYTES}`);
  return (await file.readExact(offset, size, undefined, what)).toString("utf8");
}

/** PAX records: "<length> <key>=<value>\n", the length counting the whole record. */
function parsePax(text: string, where: string): Record<string, string> {
  const out: Record<string, string> = {};
  let rest = Buffer.from(text, "utf8");
  while (rest.length > 0) {
    const space = rest.indexOf(0x20);
    const length = space > 0 ? Number(rest.subarray(0, space).toString("ascii")) : Number.NaN;
    if (!Number.isSafeInteger(length) || length <= space + 1 || length > rest.length) {
      throw new CorruptImageError(`${where}: malformed PAX header record`);
    }
    const record = rest.subarray(space + 1, length - 1).toString("utf8");
    const eq = record.indexOf("=");
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    rest = rest.subarray(length);
  }
  return out;
}

function parsePaxSize(text: string, where: string): number {
  if (!/^\d{1,16}$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new CorruptImageError(`${where}: PAX size "${text}" is not a size`);
  }
  return Number(text);
}
