import { defineOperation } from "../cleaning-operation.js";

export default defineOperation({
  name: "customize",
  description:
    "Remove the saved random seed, so clones do not start from the same entropy (virt-customize options are not run)",
  defaultEnabled: true,
  families: "all",
  async perform(ctx) {
    // virt-sysprep's customize step writes host random bytes into the seed (and, through its defaults, one
    // fixed machine-id into every clone). Removing the seed lets each clone's systemd-random-seed start
    // fresh; nothing is written into the guest.
    await ctx.removeGlobs(["/var/lib/systemd/random-seed", "/var/lib/random-seed", "/var/lib/urandom/random-seed"]);
  },
});
