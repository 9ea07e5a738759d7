/**
 * A bundle kept in a local directory, as euca2ools writes it (`-d DIR`): the manifest and its parts side by side.
 * Each file is written under a temporary name and renamed, so a reader never sees a part half there.
 */
import { randomBytes } from "node:crypto";
import { open, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { ChromogenicError, CorruptImageError } from "../errors.js";
import type { BundleStore } from "./bundle-store.js";
import { checkBundleFileName } from "./bundle-file-name.js";

export class DirectoryBundleStore implements BundleStore {
  readonly label: string;

  constructor(private readonly directory: string) {
    this.label = directory;
  }

  private path(name: string): string {
    return join(this.directory, checkBundleFileName(name, this.label));
  }

  async put(name: string, data: Uint8Array, signal?: AbortSignal): Promise<void> {
    const path = this.path(name);
    const temporary = `${path}.${randomBytes(6).toString("hex")}.partial`;
    signal?.throwIfAborted();
    const handle = await open(temporary, "wx");
    try {
      await handle.writeFile(data, { signal });
      await handle.close();
      await rename(temporary, path);
    } catch (e) {
      await handle.close().catch(() => undefined);
      await rm(temporary, { force: true });
      throw e;
    }
  }

  async get(name: string, maxBytes: number, signal?: AbortSignal): Promise<Uint8Array> {
    const path = this.path(name);
    signal?.throwIfAborted();
    const handle = await open(path, "r").catch((e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT")
        throw new ChromogenicError(`${this.label}: ${name} is missing from the bundle`, "ENOENT");
      throw e;
    });
    try {
      const { size } = await handle.stat();
      if (size > maxBytes) {
        throw new CorruptImageError(`${this.label}: ${name} is ${size} bytes, more than the ${maxBytes} allowed`);
      }
      const data = Buffer.allocUnsafe(size);
      let filled = 0;
      while (filled < size) {
        const { bytesRead } = await handle.read(data, filled, size - filled, filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      // A file that grew while read is not the one measured: refuse rather than return a prefix of it.
      if (filled !== size || (await handle.stat()).size !== size) {
        throw new ChromogenicError(`${this.label}: ${name} changed while it was read`, "ECHANGED");
      }
      return data;
    } finally {
      await handle.close();
    }
  }

  async stat(name: string): Promise<{ readonly size: number } | undefined> {
    try {
      const s = await stat(this.path(name));
      return s.isFile() ? { size: s.size } : undefined;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
  }

  async delete(name: string): Promise<void> {
    await rm(this.path(name), { force: true });
  }
}
