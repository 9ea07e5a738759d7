import { globOperation } from "../glob-operation.js";

export default globOperation({
  name: "mail-spool",
  description: "Remove the local mail spool (/var/spool/mail, /var/mail)",
  defaultEnabled: true,
  remove: ["/var/spool/mail/*", "/var/mail/*"],
});
