import { defineOperation } from "../cleaning-operation.js";

export default defineOperation({
  name: "udev-persistent-net",
  description: "Empty the udev persistent-net rules (the old NICs' MAC → ethN names) in place",
  defaultEnabled: true,
  families: "all",
  async perform(ctx) {
    // Only the generated rules are emptied. The original also emptied
    // /lib/udev/rules.d/75-persistent-net-generator.rules, the package's generator: that stops the rules from
    // ever being written again (a later NIC change then renames interfaces unpredictably), and the package
    // manager restores the file at its next update anyway. The generator is left alone.
    await ctx.truncate("/etc/udev/rules.d/70-persistent-net.rules");
  },
});
