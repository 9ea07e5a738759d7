/**
 * A streaming reader of cpio "newc" archives (magic 070701, or 070702 with checksums), the only cpio format the
 * Linux kernel unpacks into its initramfs. It sees each entry's name, mode and size and skips the data, so an
 * initramfs of any size is read in constant memory; the few small files a caller asks for are kept.
 *
 * Layout (the kernel's early userspace documentation): a 110-byte ASCII header (the magic, then 13 fields of 8
 * hex digits), the NUL-terminated name, padding to a multiple of 4, the data, padding to a multiple of 4. An
 * archive ends with an entry named TRAILER!!!; NUL bytes may follow it before the next archive.
 */
import { CorruptImageError } from "../../../formats/errors.js";

export interface CpioEntry {
  /** Path inside the archive without a leading "./" or "/" ("usr/lib/modules/6.1.0/…/virtio_blk.ko"). */
  readonly name: string;
  readonly mode: number;
  readonly size: number;
}

export interface CpioScannerOptions {
  /** Stop after the first archive's trailer (and the NULs after it), leaving the rest to the caller. */
  readonly stopAfterArchive?: boolean;
  /** More entries than this is not an initramfs (and not worth walking). */
  readonly maxEntries?: number;
  /** The largest file `visit` may ask to keep. */
  readonly maxCapture?: number;
  /** Called for every entry but the trailer; return true to receive the entry's data in `captured`. */
  readonly visit: (entry: CpioEntry) => boolean;
  readonly captured?: (entry: CpioEntry, data: Buffer) => void;
}

const HEADER = 110;
/** PATH_MAX: a longer name is corruption, not a path. */
const MAX_NAME = 4096;
const TRAILER = "TRAILER!!!";

type State = "between" | "header" | "name" | "data" | "stopped";

const pad4 = (n: number) => (4 - (n % 4)) % 4;

export class CpioScanner {
  /** Entries seen, the trailers excluded. */
  entries = 0;
  /** Archives completed (trailers seen). */
  archives = 0;
  private state: State = "between";
  private readonly pending = Buffer.alloc(HEADER + MAX_NAME + 4);
  private have = 0;
  private need = HEADER;
  private nameSize = 0;
  private current: CpioEntry | null = null;
  private isTrailer = false;
  private dataLeft = 0;
  private padLeft = 0;
  private capture: Buffer | null = null;
  private captureAt = 0;
  /** Bytes used so far, and where the current header started: for messages. */
  private position = 0;
  private headerAt = 0;

  constructor(
    /** The file the archive is in, for messages. */
    private readonly source: string,
    private readonly options: CpioScannerOptions,
  ) {}

  /** Whether the scanner stands between archives (after a trailer), where the input may end. */
  get atBoundary(): boolean {
    return (this.state === "between" && this.archives > 0) || this.state === "stopped";
  }

  get stopped(): boolean {
    return this.state === "stopped";
  }

  /**
   * Feeds the next bytes. Returns how many were used: all of them, except when `stopAfterArchive` is set and
   * the first archive (with the NULs after it) ended inside this chunk.
   */
  feed(chunk: Buffer): number {
    let at = 0;
    while (at < chunk.length) {
      switch (this.state) {
        case "stopped":
          return at;
        case "between": {
          const from = at;
          while (at < chunk.length && chunk[at] === 0) at++;
          this.position += at - from;
          if (at === chunk.length) break;
          if (this.options.stopAfterArchive && this.archives > 0) {
            this.state = "stopped";
            return at;
          }
          this.startHeader();
          break;
        }
        case "header":
        case "name": {
          const n = Math.min(this.need - this.have, chunk.length - at);
          chunk.copy(this.pending, this.have, at, at + n);
          this.have += n;
          at += n;
          this.position += n;
          if (this.have < this.need) break;
          if (this.state === "header") this.parseHeader();
          else this.parseName();
          break;
        }
        case "data": {
          const n = Math.min(this.dataLeft + this.padLeft, chunk.length - at);
          const data = Math.min(n, this.dataLeft);
          if (this.capture && data > 0) {
            chunk.copy(this.capture, this.captureAt, at, at + data);
            this.captureAt += data;
          }
          this.dataLeft -= data;
          this.padLeft -= n - data;
          at += n;
          this.position += n;
          if (this.dataLeft === 0 && this.padLeft === 0) this.endEntry();
          break;
        }
      }
    }
    return at;
  }

  /** The input ended: it must end between archives, after at least one. */
  finish(): void {
    if (this.atBoundary) return;
    if (this.archives === 0 && this.state === "between")
      throw this.corrupt("holds no cpio archive (no TRAILER!!! entry)");
    throw this.corrupt(`ends inside a cpio archive${this.current ? ` (in ${this.current.name})` : ""}`);
  }

  private corrupt(what: string): CorruptImageError {
    return new CorruptImageError(`${this.source}: ${what}`);
  }

  private parseHeader(): void {
    const text = this.pending.toString("latin1", 0, HEADER);
    const magic = text.slice(0, 6);
    if (magic !== "070701" && magic !== "070702") {
      const hint = magic === "070707" ? " (the old portable format, which the kernel does not unpack)" : "";
      throw this.corrupt(`no cpio newc header at byte ${this.headerAt}${hint}`);
    }
    const fields: number[] = [];
    for (let i = 0; i < 13; i++) {
      const hex = text.slice(6 + i * 8, 14 + i * 8);
      if (!/^[0-9A-Fa-f]{8}$/.test(hex)) throw this.corrupt(`bad cpio header field at byte ${this.headerAt}`);
      fields.push(parseInt(hex, 16));
    }
    const [, mode, , , , , size, , , , , nameSize] = fields as [number, ...number[]];
    if (nameSize! < 1 || nameSize! > MAX_NAME) throw this.corrupt(`cpio name of ${nameSize} bytes`);
    this.nameSize = nameSize!;
    this.current = { name: "", mode: mode!, size: size! };
    this.state = "name";
    this.have = 0;
    this.need = nameSize! + pad4(HEADER + nameSize!);
  }

  private parseName(): void {
    const raw = this.pending.subarray(0, this.nameSize);
    const end = raw.indexOf(0);
    const name = raw.toString("latin1", 0, end < 0 ? raw.length : end);
    const { mode, size } = this.current!;
    this.isTrailer = name === TRAILER;
    const entry: CpioEntry = { name: name.replace(/^(?:\.?\/)+/, ""), mode, size };
    this.current = entry;
    this.capture = null;
    if (!this.isTrailer) {
      if (++this.entries > (this.options.maxEntries ?? 1_000_000))
        throw this.corrupt(`more than ${this.options.maxEntries ?? 1_000_000} cpio entries`);
      if (this.options.visit(entry) && size <= (this.options.maxCapture ?? 4 * 2 ** 20)) {
        this.capture = Buffer.alloc(size);
        this.captureAt = 0;
      }
    }
    this.dataLeft = size;
    this.padLeft = pad4(size);
    this.state = "data";
    if (size === 0) this.endEntry();
  }

  private endEntry(): void {
    if (this.capture) this.options.captured?.(this.current!, this.capture);
    this.capture = null;
    this.current = null;
    if (this.isTrailer) {
      this.archives++;
      this.state = "between";
    } else this.startHeader();
  }

  private startHeader(): void {
    this.state = "header";
    this.headerAt = this.position;
    this.have = 0;
    this.need = HEADER;
  }
}
