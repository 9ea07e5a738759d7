import { globOperation } from "../glob-operation.js";

export default globOperation({
  name: "ipa-client",
  description: "Remove the IPA client's enrolment (CA certificate, default.conf, sysrestore and pki state)",
  defaultEnabled: true,
  remove: ["/etc/ipa/ca.crt", "/etc/ipa/default.conf", "/var/lib/ipa-client/sysrestore/*", "/var/lib/ipa-client/pki/*"],
});
