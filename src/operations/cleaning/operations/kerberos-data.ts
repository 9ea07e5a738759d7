import { defineOperation } from "../cleaning-operation.js";

/** The KDC's configuration stays; its database, stash and logs go (virt-sysprep's kerberos-data). */
const KEEP = new Set(["kadm5.acl", "kdc.conf"]);

export default defineOperation({
  name: "kerberos-data",
  description: "Remove Kerberos KDC data in /var/kerberos/krb5kdc (keeping kadm5.acl and kdc.conf)",
  defaultEnabled: false,
  families: "all",
  async perform(ctx) {
    for (const name of await ctx.list("/var/kerberos/krb5kdc"))
      if (!KEEP.has(name)) await ctx.remove(`/var/kerberos/krb5kdc/${name}`);
  },
});
