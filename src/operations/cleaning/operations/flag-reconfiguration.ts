import { defineOperation } from "../cleaning-operation.js";

export default defineOperation({
  name: "flag-reconfiguration",
  description:
    "Create /.unconfigured, so the first boot asks for settings such as the root password and time zone (where the guest's init supports it)",
  defaultEnabled: false,
  families: "all",
  async perform(ctx) {
    await ctx.createFile("/.unconfigured", "", 0o644, "flags the system for reconfiguration at first boot");
  },
});
