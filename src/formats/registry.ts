import type { FormatDriver, ProbeInput } from "./types.js";
import type { ImageInput } from "./inputs/image-input.js";
import { FileInput } from "./inputs/file-input.js";
import { UsageError } from "./errors.js";
import { recogniseForeignFormat, unreadableFormatError } from "./foreign-formats.js";
import { rawDriver } from "./drivers/raw/raw-driver.js";
import { qcow2Driver } from "./drivers/qcow2/qcow2-driver.js";
import { vdiDriver } from "./drivers/vdi/vdi-driver.js";
import { vhdDriver } from "./drivers/vhd/vhd-driver.js";
import { vhdxDriver } from "./drivers/vhdx/vhdx-driver.js";
import { vmdkDriver } from "./drivers/vmdk/vmdk-driver.js";

/**
 * The table of format drivers, registered once. Detection is a contest over the file's content, never its
 * name: every driver scores the head (and may look at the tail), the highest score wins, raw is the fallback.
 * The order of registration is the order of preference where a destination takes several formats: qcow2
 * (sparse, compressible, what KVM clouds boot and snapshot natively), raw, then the others.
 */
const drivers: FormatDriver[] = [];

export function registerDriver(driver: FormatDriver): void {
  const names = [driver.name, ...(driver.aliases ?? [])];
  if (drivers.some((d) => names.includes(d.name) || d.aliases?.some((a) => names.includes(a)))) {
    throw new Error(`format driver ${driver.name} registered twice`);
  }
  drivers.push(driver);
}

export function listDrivers(): readonly FormatDriver[] {
  return drivers;
}

export function getDriver(name: string): FormatDriver {
  const driver = drivers.find((d) => d.name === name || d.aliases?.includes(name));
  if (!driver) throw new UsageError(`unknown format "${name}" (known: ${drivers.map((d) => d.name).join(", ")})`);
  return driver;
}

/**
 * `names` (a store's vocabulary, e.g. the disk formats Glance accepts) in the order of preference: the ones a
 * driver reads in registration order, under their drivers' names, then the rest as given.
 */
export function inPreferenceOrder(names: readonly string[]): string[] {
  const known = new Set(names.map((n) => findDriver(n)?.name).filter((n) => n !== undefined));
  const ours = drivers.filter((d) => known.has(d.name)).map((d) => d.name);
  return [...ours, ...names.filter((n) => findDriver(n) === undefined)];
}

/** The formats chromogenic reads, in the order of preference. */
export function readableFormats(): string[] {
  return drivers.map((d) => d.name);
}

/** The formats chromogenic writes, in the order of preference. */
export function writableFormats(): string[] {
  return drivers.filter((d) => d.create).map((d) => d.name);
}

/**
 * Whether images of `format` are the guest disk's bytes at the same offsets (raw): such an image can back a
 * loop device, be downloaded sparse, and have its disk size known before it is uploaded.
 */
export function isPlainDisk(format: string): boolean {
  return findDriver(format)?.plainDisk === true;
}

/** Bytes of the input's head handed to every probe. */
export const PROBE_HEAD = 4096;

/**
 * Finds the format of an image from its content: `image` is an open input (left open) or a local path.
 * On an input read once in order, the head stays buffered for the driver that is then opened on it.
 */
export async function detectFormat(image: ImageInput | string): Promise<FormatDriver> {
  if (typeof image === "string") {
    const input = await FileInput.open(image);
    try {
      return await detectFormat(input);
    } finally {
      await input.close();
    }
  }
  const input = image;
  const head = await input.readPadded(0, Math.min(PROBE_HEAD, input.size));
  const probe: ProbeInput = {
    head,
    size: input.size,
    async readTail(length: number) {
      if (input.sequential) throw new UsageError(`${input.path}: the end of an input read in order cannot be probed`);
      const n = Math.min(length, input.size);
      return input.readExact(input.size - n, n, undefined, "the image's tail");
    },
  };
  let best: FormatDriver | undefined;
  let bestScore = 0;
  for (const driver of drivers) {
    const score = await driver.probe(probe);
    if (score > bestScore) {
      best = driver;
      bestScore = score;
    }
  }
  if (best && best !== rawDriver) return best;
  // Raw is what remains, unless the content is in a format known not to be a raw disk (foreign-formats.ts).
  const foreign = await recogniseForeignFormat(probe);
  if (foreign) throw unreadableFormatError(input.path, foreign);
  return getDriver("raw");
}

/**
 * The driver for a format name of another tool's vocabulary (Glance's `disk_format`, qemu's `backing_format`,
 * an OVF's disk format URI's last word): a driver name or alias, case-insensitively; undefined when no driver
 * reads it. Providers map their names through this instead of keeping format lists of their own.
 */
export function findDriver(name: string): FormatDriver | undefined {
  const wanted = name.toLowerCase();
  return drivers.find((d) => d.name === wanted || d.aliases?.includes(wanted));
}

/**
 * The drivers chromogenic ships, registered at load in the order of preference. Their types give the library
 * its typed createOptions (create-options-for.ts).
 */
const BUILT_IN_DRIVERS = [qcow2Driver, rawDriver, vmdkDriver, vhdDriver, vhdxDriver, vdiDriver] as const;
export type BuiltInDriver = (typeof BUILT_IN_DRIVERS)[number];
for (const driver of BUILT_IN_DRIVERS) registerDriver(driver);
