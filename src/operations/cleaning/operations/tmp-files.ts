import { defineOperation } from "../cleaning-operation.js";

export default defineOperation({
  name: "tmp-files",
  description: "Remove everything in /tmp and /var/tmp (the folders themselves, with their mode 1777, stay)",
  defaultEnabled: true,
  families: "all",
  async perform(ctx) {
    await ctx.emptyFolder("/tmp");
    await ctx.emptyFolder("/var/tmp");
  },
});
