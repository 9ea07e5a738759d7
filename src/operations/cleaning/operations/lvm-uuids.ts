import { defineOperation } from "../cleaning-operation.js";

export default defineOperation({
  name: "lvm-uuids",
  description:
    "No-op here: new PV/VG UUIDs need pvchange/vgchange on inactive volume groups, and cleaning works on them mounted",
  defaultEnabled: true,
  families: "all",
  async perform() {
    // virt-sysprep runs `pvchange -u` / `vgchange -u` inside its appliance. There is no file-level
    // equivalent (the UUIDs live in the PV labels and VG metadata on disk), and the volume groups are
    // active and mounted while operations run, so this stays a documented no-op.
  },
});
