/**
 * A store's Xen guests, told by their metadata alone (Glance's `hypervisor_type` and `vm_mode`), and the
 * properties a PC-bootable copy of one leaves behind (the Xen marks and an AMI-style image's external kernel).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { isXenGuestImage, withoutXenProperties } from "../../src/providers/xen-guest-image.js";

test("hypervisor_type=xen or vm_mode=xen marks a Xen guest; hvm, kvm and nothing do not", () => {
  assert.equal(isXenGuestImage({ hypervisor_type: "xen" }), true);
  assert.equal(isXenGuestImage({ vm_mode: "Xen" }), true);
  assert.equal(isXenGuestImage({ hypervisor_type: "xen", vm_mode: "hvm" }), true);
  assert.equal(isXenGuestImage({ vm_mode: "hvm" }), false);
  assert.equal(isXenGuestImage({ hypervisor_type: "kvm", os_distro: "xen" }), false);
  assert.equal(isXenGuestImage({}), false);
});

test("a bootable copy drops the Xen marks and the external kernel's ids, and keeps the rest", () => {
  assert.deepEqual(
    withoutXenProperties({
      hypervisor_type: "xen",
      vm_mode: "xen",
      kernel_id: "aki-1",
      ramdisk_id: "ari-1",
      os_distro: "debian",
      architecture: "x86_64",
    }),
    { os_distro: "debian", architecture: "x86_64" },
  );
  // Marks that say another hypervisor are the user's choice, kept.
  assert.deepEqual(withoutXenProperties({ hypervisor_type: "kvm", vm_mode: "hvm" }), {
    hypervisor_type: "kvm",
    vm_mode: "hvm",
  });
});
