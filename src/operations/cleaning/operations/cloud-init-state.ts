import { defineOperation } from "../cleaning-operation.js";

export default defineOperation({
  name: "cloud-init-state",
  description:
    "Remove cloud-init's state as `cloud-init clean --logs` does (/var/lib/cloud/* except seed/; its logs emptied)",
  defaultEnabled: true,
  families: "all",
  async perform(ctx) {
    // `cloud-init clean` removes every entry of /var/lib/cloud except seed/ (instance and instances/, data/,
    // sem/, handlers/, scripts/ — per-boot/per-instance scripts included, they come from user data again),
    // and with --logs its two logs. The logs are emptied in place here like every other log. What it does
    // only with --configs (generated network and sshd configuration) and its clean.d hooks (programs) are
    // left out: the first would drop a working network configuration, the second would run guest programs.
    for (const name of await ctx.list("/var/lib/cloud"))
      if (name !== "seed") await ctx.remove(`/var/lib/cloud/${name}`);
    await ctx.truncateGlobs(["/var/log/cloud-init.log", "/var/log/cloud-init-output.log"]);
  },
});
