import { open } from "node:fs/promises";
import type { FormatDriver, ProbeInput } from "./types.js";
import { UsageError } from "./errors.js";
import { rawDriver } from "./drivers/raw/raw-driver.js";
import { qcow2Driver } from "./drivers/qcow2/qcow2-driver.js";
import { vdiDriver } from "./drivers/vdi/vdi-driver.js";
import { vhdDriver } from "./drivers/vhd/vhd-driver.js";
import { vhdxDriver } from "./drivers/vhdx/vhdx-driver.js";
import { vmdkDriver } from "./drivers/vmdk/vmdk-driver.js";

/**
 * The table of format drivers, registered once. Detection is a contest over the file's content, never its
 * name: every driver scores the head (and may look at the tail), the highest score wins, raw is the fallback.
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

/** Bytes of the file's head handed to every probe. */
const PROBE_HEAD = 4096;

/** Finds the format of the file at `path` from its content. */
export async function detectFormat(path: string): Promise<FormatDriver> {
  const handle = await open(path, "r");
  try {
    const size = (await handle.stat()).size;
    const head = Buffer.alloc(Math.min(PROBE_HEAD, size));
    await handle.read(head, 0, head.length, 0);
    const input: ProbeInput = {
      head,
      size,
      async readTail(length: number) {
        const n = Math.min(length, size);
        const tail = Buffer.alloc(n);
        await handle.read(tail, 0, n, size - n);
        return tail;
      },
    };
    let best: FormatDriver | undefined;
    let bestScore = 0;
    for (const driver of drivers) {
      const score = await driver.probe(input);
      if (score > bestScore) {
        best = driver;
        bestScore = score;
      }
    }
    return best ?? getDriver("raw");
  } finally {
    await handle.close();
  }
}

registerDriver(rawDriver);
registerDriver(qcow2Driver);
registerDriver(vdiDriver);
registerDriver(vhdDriver);
registerDriver(vhdxDriver);
registerDriver(vmdkDriver);
