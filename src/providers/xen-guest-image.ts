/**
 * Whether a store's image is a Xen guest, read from its metadata only (a provider never looks inside the bytes):
 * the Glance properties OpenStack's scheduler reads — `hypervisor_type=xen`, `vm_mode=xen` (Xen's paravirtual
 * ABI) — and which the local store keeps the same way. A store whose every image is a Xen guest (Eucalyptus,
 * EC2's paravirtual AMIs) says so once, in `ProviderCapabilities.xenGuests`.
 *
 * A migration makes such an image bootable on a PC (workflows/bootable-step.ts); the new image then no longer
 * needs Xen, nor the external kernel and ramdisk images an AMI-style image names, so those properties are not
 * carried over to it.
 */

/** The properties that tie an image to Xen or to an external kernel. */
const XEN_PROPERTIES = {
  hypervisor_type: (v: string) => v.toLowerCase() === "xen",
  vm_mode: (v: string) => v.toLowerCase() === "xen",
  kernel_id: () => true,
  ramdisk_id: () => true,
} as const;

/** The store's metadata marks this image as a Xen guest. */
export function isXenGuestImage(properties: Readonly<Record<string, string>>): boolean {
  return (
    XEN_PROPERTIES.hypervisor_type(properties.hypervisor_type ?? "") || XEN_PROPERTIES.vm_mode(properties.vm_mode ?? "")
  );
}

/** `properties` without the marks of a Xen guest and its external kernel (for an image converted to boot on a PC). */
export function withoutXenProperties(properties: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(properties).filter(([k, v]) => {
      const mark = XEN_PROPERTIES[k as keyof typeof XEN_PROPERTIES];
      return !mark?.(v);
    }),
  );
}
