import { globOperation } from "../glob-operation.js";

export default globOperation({
  name: "dovecot-data",
  description: "Remove Dovecot (mail server) data",
  defaultEnabled: true,
  remove: ["/var/lib/dovecot/*"],
});
