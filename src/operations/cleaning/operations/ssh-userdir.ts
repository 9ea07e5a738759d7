import { defineOperation } from "../cleaning-operation.js";

export default defineOperation({
  name: "ssh-userdir",
  description:
    "Remove the .ssh folder (keys, authorized_keys, known_hosts) of root, /home/* and every ordinary account",
  defaultEnabled: true,
  families: "all",
  async perform(ctx) {
    for (const home of await ctx.homes()) await ctx.remove(`${home}/.ssh`);
  },
});
