import { findDriver } from "../formats/registry.js";

/** Where an image goes to be imported: a cloud store, or VMware's and AWS's import (OVA presets, VMDK hint). */
const IMPORTERS = ["cloud", "vmware", "aws"];

/**
 * The create options a job writes its output with, for the target it is meant for ("cloud", an OVA target): an
 * importer gets the form the driver declares for import (VMDK's streamOptimized), anything else the defaults.
 */
export function createOptionsFor(format: string, target: string | undefined): Readonly<Record<string, string>> {
  return target && IMPORTERS.includes(target) ? (findDriver(format)?.importOptions ?? {}) : {};
}
