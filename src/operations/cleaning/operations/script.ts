import { defineOperation } from "../cleaning-operation.js";

export default defineOperation({
  name: "script",
  description: "No-op: virt-sysprep runs user scripts against the guest; chromogenic never runs programs on it",
  defaultEnabled: true,
  families: "all",
  async perform() {
    // Kept so virt-sysprep selections naming it still parse; running arbitrary scripts on a mounted guest
    // is outside what cleaning does (no guest or user program runs).
  },
});
