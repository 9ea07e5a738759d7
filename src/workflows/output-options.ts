/** The create options a job writes its output with, for the target it is meant for ("cloud", an OVA target). */
export function createOptionsFor(format: string, target: string | undefined): Readonly<Record<string, string>> {
  // Glance, VMware and AWS take the streamOptimized VMDK (and it is the one that can be streamed).
  if (format === "vmdk" && target && ["cloud", "vmware", "aws"].includes(target))
    return { subformat: "streamOptimized" };
  return {};
}
