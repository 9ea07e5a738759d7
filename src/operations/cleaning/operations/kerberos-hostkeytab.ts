import { globOperation } from "../glob-operation.js";

export default globOperation({
  name: "kerberos-hostkeytab",
  description: "Remove the Kerberos host keytab /etc/krb5.keytab",
  defaultEnabled: true,
  remove: ["/etc/krb5.keytab"],
});
