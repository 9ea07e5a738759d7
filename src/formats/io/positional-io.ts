import type { FileHandle } from "node:fs/promises";
import { loadNativeAddon } from "../../util/native-addon.js";

/**
 * Positional reads and writes of whole buffers, for every image file the engine opens. With the block-io addon
 * (native/block-io.c) a request of any size is one threadpool task issuing 1 MiB system calls, which lets the
 * convert pipeline move 4 MiB per piece (a quarter of the round trips between threads, and of the main thread's
 * work per byte) without the multi-MiB system calls this kernel is erratic with (see that file). Without it,
 * node:fs does the same, one system call per request.
 *
 * The addon works on the raw descriptor, which node:fs does not know is busy: FileHandle.close() would not
 * wait for it, and a descriptor closed under a running read could be reused by another open. Every request is
 * therefore registered against its handle, and `closeHandle` waits for them first.
 */
interface BlockIoAddon {
  /** Reads up to buffer.length bytes at position; fewer only at end of file. */
  read(fd: number, buffer: Buffer, position: number): Promise<number>;
  /** Writes all of buffer at position. */
  write(fd: number, buffer: Buffer, position: number): Promise<void>;
  /** Makes length bytes at position read as zeros (a hole punched, a device's range zeroed, or zeros written). */
  zero(fd: number, position: number, length: number): Promise<void>;
  /** Drops the file's pages from the page cache if none is dirty: the bytes dropped, or -1 when left alone. */
  dropCleanCache(fd: number): Promise<number>;
}

/** Null when the addon was not built, or when CHROMOGENIC_NATIVE_IO=off (to measure or test node:fs alone). */
function blockIo(): BlockIoAddon | null {
  return process.env.CHROMOGENIC_NATIVE_IO === "off" ? null : loadNativeAddon<BlockIoAddon>("block-io");
}

/** True when large requests go through the addon: callers may then size them well above 1 MiB. */
export function largeRequestsAreSplit(): boolean {
  return blockIo() !== null;
}

const pending = new WeakMap<FileHandle, Set<Promise<unknown>>>();

function track<T>(handle: FileHandle, request: Promise<T>): Promise<T> {
  let set = pending.get(handle);
  if (!set) pending.set(handle, (set = new Set()));
  set.add(request);
  const done = () => void set.delete(request);
  request.then(done, done);
  return request;
}

/** Reads up to `length` bytes at `position` into `buf` (from offset 0); resolves with the count (short only at EOF). */
export async function readAt(handle: FileHandle, buf: Buffer, length: number, position: number): Promise<number> {
  const addon = blockIo();
  if (addon) return track(handle, addon.read(handle.fd, buf.subarray(0, length), position));
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buf, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

/** Writes all of `data` at `position`. */
export async function writeAt(handle: FileHandle, data: Buffer, position: number): Promise<void> {
  const addon = blockIo();
  if (addon) return track(handle, addon.write(handle.fd, data, position));
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await handle.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

/** Largest run of zeros written at once without the addon. */
const ZERO_CHUNK = 2 ** 20;
let zeroChunk: Buffer | undefined;

/**
 * Makes `length` bytes at `position` read as zeros: with the addon, without moving data where the file or device
 * can (fallocate); without it, by writing zeros.
 */
export async function zeroAt(handle: FileHandle, position: number, length: number): Promise<void> {
  if (length <= 0) return;
  const addon = blockIo();
  if (addon) return track(handle, addon.zero(handle.fd, position, length));
  zeroChunk ??= Buffer.alloc(ZERO_CHUNK);
  for (let done = 0; done < length; done += ZERO_CHUNK) {
    await writeAt(handle, zeroChunk.subarray(0, Math.min(ZERO_CHUNK, length - done)), position + done);
  }
}

/**
 * Drops the file's pages from the page cache when none of them is dirty (the file itself is untouched): resolves
 * with the bytes dropped, or -1 when they were left alone (dirty pages, a kernel without cachestat, no addon).
 */
export async function dropCleanCache(handle: FileHandle): Promise<number> {
  const addon = blockIo();
  return addon ? track(handle, addon.dropCleanCache(handle.fd)) : -1;
}

/** Resolves once every request started on `handle` through this module has ended, failed or not. */
export async function settlePending(handle: FileHandle): Promise<void> {
  const set = pending.get(handle);
  if (set) await Promise.allSettled([...set]);
}

/** Closes `handle` once every request started on it through this module has ended. */
export async function closeHandle(handle: FileHandle): Promise<void> {
  await settlePending(handle);
  await handle.close();
}
