import { defineOperation } from "../cleaning-operation.js";

export default defineOperation({
  name: "bash-history",
  description: "Remove .bash_history of root and every user",
  defaultEnabled: true,
  families: "all",
  async perform(ctx) {
    for (const home of await ctx.homes({ includeServiceAccounts: true })) await ctx.remove(`${home}/.bash_history`);
  },
});
