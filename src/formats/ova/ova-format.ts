/**
 * The name an OVA goes by where formats are chosen (`-O ova`, `export --format ova`, a job's destination). An
 * OVA is not a disk format with a driver but an appliance around disks, so the code that accepts it beside the
 * drivers' names asks `isOvaFormat` rather than spelling the name itself.
 */
export const OVA_FORMAT = "ova";

export function isOvaFormat(format: string | undefined): boolean {
  return format?.toLowerCase() === OVA_FORMAT;
}
