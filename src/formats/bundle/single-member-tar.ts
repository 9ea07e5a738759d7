/**
 * A strict streaming reader for the tar inside a bundle: exactly one regular file, whose bytes it hands on as
 * they arrive. A bundle's tar comes from whoever could write to the bucket, and euca2ools' reader (tarfile's
 * extractfile of the first member) would follow whatever it finds; this one refuses links, devices, directories,
 * sparse members, a second member, names that are not plain (`../`, absolute), and PAX/GNU long names that
 * would rename the member. Python's tarfile writes a PAX header for a member above 8 GiB: its `size` and
 * `path` records are honoured (the path checked like any name), the harmless ones ignored, the rest refused.
 */
import { CorruptImageError } from "../errors.js";
import { TAR_BLOCK, decodeTarHeader, isZeroBlock, tarPadding } from "../ova/tar-header.js";

/** A PAX header of a single file holds a few short records; anything larger is not one a bundler wrote. */
const MAX_PAX_BYTES = 64 * 1024;
const HARMLESS_PAX_KEYS = new Set(["mtime", "atime", "ctime", "uid", "gid", "uname", "gname", "comment"]);

type State = "header" | "pax" | "data" | "padding" | "trailer";

export class SingleMemberTar {
  private state: State = "header";
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes still to come in the current state (pax data, member data, padding). */
  private remaining = 0;
  private paxSize: number | undefined;
  private paxPath: string | undefined;
  private seenMember = false;
  name: string | undefined;
  size = 0;

  constructor(
    private readonly where: string,
    private readonly maxSize: number,
  ) {}

  /** Feeds tar bytes; returns the member data slices they contain, in order. */
  write(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let at = 0;
    while (at < chunk.length) {
      if (this.state === "data") {
        const take = Math.min(this.remaining, chunk.length - at);
        out.push(chunk.subarray(at, at + take));
        at += take;
        this.remaining -= take;
        if (this.remaining === 0) this.afterData();
        continue;
      }
      if (this.state === "padding" || this.state === "trailer") {
        // After the member: its padding, then zero blocks to the end. Anything else is a second member.
        const end = this.state === "padding" ? Math.min(chunk.length, at + this.remaining) : chunk.length;
        for (let i = at; i < end; i++) {
          if (chunk[i] !== 0) {
            throw new CorruptImageError(`${this.where}: the bundle's tar holds more than its one image member`);
          }
        }
        if (this.state === "padding") {
          this.remaining -= end - at;
          if (this.remaining === 0) this.state = "trailer";
        }
        at = end;
        continue;
      }
      // header or pax: gather whole blocks.
      const want = this.state === "header" ? TAR_BLOCK : this.remaining;
      const take = Math.min(want - this.pendingBytes, chunk.length - at);
      this.pending.push(chunk.subarray(at, at + take));
      this.pendingBytes += take;
      at += take;
      if (this.pendingBytes < want) continue;
      const block = Buffer.concat(this.pending);
      this.pending = [];
      this.pendingBytes = 0;
      if (this.state === "header") this.header(block);
      else this.pax(block);
    }
    return out;
  }

  /** The archive ended: the member must have been read whole. */
  end(): void {
    if (!this.seenMember || this.state === "data" || this.state === "header" || this.state === "pax") {
      throw new CorruptImageError(`${this.where}: the bundle's tar ends before its image member does`);
    }
  }

  private header(block: Buffer): void {
    if (isZeroBlock(block)) {
      throw new CorruptImageError(`${this.where}: the bundle's tar holds no image member`);
    }
    const header = decodeTarHeader(block, this.where);
    if (header.type === "pax-header") {
      if (this.paxSize !== undefined || this.paxPath !== undefined || header.size > MAX_PAX_BYTES) {
        throw new CorruptImageError(`${this.where}: the bundle's tar has an oversized or repeated PAX header`);
      }
      this.state = "pax";
      // The PAX data and its padding are gathered together.
      this.remaining = header.size + tarPadding(header.size);
      this.paxSize = -1;
      return;
    }
    if (header.type !== "file") {
      const what = header.type === "other" ? `a member of type "${header.typeflag}"` : `a ${header.type}`;
      throw new CorruptImageError(
        `${this.where}: the bundle's tar holds ${what} ("${header.name.slice(0, 80)}"), not one regular file; refused`,
      );
    }
    const name = this.paxPath ?? header.name;
    checkMemberName(name, this.where);
    const size = this.paxSize !== undefined && this.paxSize >= 0 ? this.paxSize : header.size;
    if (size > this.maxSize) {
      throw new CorruptImageError(`${this.where}: the tar member is ${size} bytes, more than the manifest declares`);
    }
    this.name = name;
    this.size = size;
    this.seenMember = true;
    this.remaining = size;
    this.state = "data";
    if (size === 0) this.afterData();
  }

  private afterData(): void {
    this.remaining = tarPadding(this.size);
    this.state = this.remaining > 0 ? "padding" : "trailer";
  }

  private pax(block: Buffer): void {
    const records = block.toString("utf8").replace(/\0+$/, "");
    let at = 0;
    while (at < records.length) {
      const space = records.indexOf(" ", at);
      const length = Number(records.slice(at, space));
      if (space < 0 || !Number.isSafeInteger(length) || length <= 0 || at + length > records.length + 1) {
        throw new CorruptImageError(`${this.where}: the bundle's tar has a malformed PAX header`);
      }
      const record = records.slice(space + 1, at + length - 1);
      const eq = record.indexOf("=");
      const key = record.slice(0, eq);
      const value = record.slice(eq + 1);
      if (key === "size" && /^\d{1,16}$/.test(value)) this.paxSize = Number(value);
      else if (key === "path") this.paxPath = value;
      else if (!HARMLESS_PAX_KEYS.has(key)) {
        throw new CorruptImageError(`${this.where}: the bundle's tar has a PAX record "${key.slice(0, 40)}"; refused`);
      }
      at += length;
    }
    this.state = "header";
  }
}

/** A plain relative name: no directories, no `..`, not absolute. */
function checkMemberName(name: string, where: string): void {
  // eslint-disable-next-line no-control-regex -- control characters are what the pattern looks for
  if (!name || name.includes("/") || name.includes("\\") || name === "." || name === ".." || /[\x00-\x1f]/.test(name)) {
    throw new CorruptImageError(
      `${where}: the bundle's tar member "${name.slice(0, 80)}" is not a plain file name; refused`,
    );
  }
}
