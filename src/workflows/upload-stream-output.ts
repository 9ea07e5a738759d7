/**
 * The sequential OutputFile a format target writes into when its output goes straight into an upload: a
 * stream the upload reads from, with backpressure (a write resolves once the upload has room for it). Each
 * write is copied first: the convert pipeline recycles its buffers as soon as a write resolves, while the
 * bytes still sit in this stream's queue waiting for the network.
 */
import { PassThrough } from "node:stream";
import type { OutputFile } from "../formats/io/output-file.js";
import { TransferError } from "../util/errors.js";

export class UploadStreamOutput implements OutputFile {
  readonly seekable = false;
  /** What the upload reads. */
  readonly stream = new PassThrough({ highWaterMark: 8 * 2 ** 20 });
  private written = 0;

  get position(): number {
    return this.written;
  }

  append(data: Buffer): Promise<void> {
    const copy = Buffer.from(data);
    this.written += copy.length;
    return new Promise((resolve, reject) => {
      const more = this.stream.write(copy, (err) => {
        if (err) reject(err);
      });
      if (more) return resolve();
      const onDrain = () => {
        this.stream.off("close", onClose);
        resolve();
      };
      const onClose = () => {
        this.stream.off("drain", onDrain);
        reject(new TransferError("the upload stopped reading"));
      };
      this.stream.once("drain", onDrain);
      this.stream.once("close", onClose);
    });
  }

  writeAt(): Promise<void> {
    return Promise.reject(new Error("an upload stream is sequential: positional writes are not possible"));
  }

  truncate(): Promise<void> {
    return Promise.reject(new Error("an upload stream is sequential: it cannot be truncated"));
  }

  /** No more data: the upload sees the end of the stream. */
  end(): void {
    this.stream.end();
  }

  /** The conversion failed: the upload's read fails too, so it aborts rather than storing a short image. */
  fail(error: Error): void {
    this.stream.destroy(error);
  }
}
