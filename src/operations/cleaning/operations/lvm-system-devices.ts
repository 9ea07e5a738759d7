import { globOperation } from "../glob-operation.js";

export default globOperation({
  name: "lvm-system-devices",
  description: "Remove LVM2's system.devices, which names the old host's disks by their IDs",
  defaultEnabled: true,
  remove: ["/etc/lvm/devices/system.devices"],
});
