/**
 * An append-only OutputFile for one tar member: a disk writer (the streamOptimized VMDK target) appends to it
 * as to a pipe, and the bytes land at the member's place in a seekable file — straight into the OVA, after a
 * 512-byte hole left for the member's header, which is written once the size is known. The manifest digest is
 * computed from the same bytes as they pass, so nothing is read back.
 */
import type { Hash } from "node:crypto";
import type { OutputFile } from "../io/output-file.js";

/** The positional-write half of a seekable output (every FileOutput has it). */
export interface PositionalSink {
  writeAt(data: Buffer, position: number): Promise<void>;
}

export class MemberOutput implements OutputFile {
  readonly seekable = false;
  private written = 0;

  constructor(
    private readonly sink: PositionalSink,
    /** Where the member's data starts in the sink. */
    private readonly dataStart: number,
    private readonly digest: Hash,
    /** The member's name; the VMDK writer records it as the extent's file name. */
    readonly finalPath: string,
  ) {}

  get position(): number {
    return this.written;
  }

  append(data: Buffer): Promise<void> {
    // Place and digest are settled synchronously, so appends issued before earlier ones resolve stay in order.
    const at = this.dataStart + this.written;
    this.written += data.length;
    this.digest.update(data);
    return this.sink.writeAt(data, at);
  }

  writeAt(): Promise<void> {
    return Promise.reject(new Error("a tar member is written in order: positional writes are not possible"));
  }

  truncate(): Promise<void> {
    return Promise.reject(new Error("a tar member is written in order: it cannot be truncated"));
  }
}
