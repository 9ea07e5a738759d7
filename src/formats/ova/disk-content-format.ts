/**
 * The format of an OVA disk whose descriptor gives no ovf:format, read from its content as virt-v2v (through
 * qemu's probing) and ovftool do rather than refused: a hosted sparse or streamOptimized VMDK by its "KDMV"
 * magic — what such disks nearly always are — and anything else by the format registry's probes, the same
 * contest `convert` runs on a plain file. Kept to this one function so the OVA code depends on the registry's
 * probe interface only.
 */
import type { ImageInput } from "../io/image-input.js";
import { listDrivers } from "../registry.js";
import type { ProbeInput } from "../types.js";

/** Bytes of the head the probes see (as the registry gives them for a file). */
const PROBE_HEAD = 4096;

/** The name of the driver that reads `input` ("raw" when no other recognises it). */
export async function diskContentFormat(input: ImageInput): Promise<string> {
  const head = await input.readExact(0, Math.min(PROBE_HEAD, input.size), undefined, "disk header");
  if (head.subarray(0, 4).toString("latin1") === "KDMV") return "vmdk";
  const probe: ProbeInput = {
    head,
    size: input.size,
    readTail: (length) => {
      const n = Math.min(length, input.size);
      return input.readExact(input.size - n, n, undefined, "disk trailer");
    },
  };
  let best = "raw";
  let bestScore = 0;
  for (const driver of listDrivers()) {
    const score = await driver.probe(probe);
    if (score > bestScore) {
      best = driver.name;
      bestScore = score;
    }
  }
  return best;
}
