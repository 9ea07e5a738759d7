import { globOperation } from "../glob-operation.js";

export default globOperation({
  name: "rhn-systemid",
  description: "Remove the RHN system ID",
  defaultEnabled: true,
  families: ["redhat"],
  remove: ["/etc/sysconfig/rhn/systemid", "/etc/sysconfig/rhn/osad-auth.conf"],
});
