import { defineOperation } from "../cleaning-operation.js";

export default defineOperation({
  name: "zsh-history",
  description: "Remove zsh histories (.zsh_history, .zhistory, .histfile) of root and every user",
  defaultEnabled: true,
  families: "all",
  async perform(ctx) {
    for (const home of await ctx.homes({ includeServiceAccounts: true }))
      for (const name of [".zsh_history", ".zhistory", ".histfile"]) await ctx.remove(`${home}/${name}`);
  },
});
