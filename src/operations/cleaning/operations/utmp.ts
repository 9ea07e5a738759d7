import { globOperation } from "../glob-operation.js";

export default globOperation({
  name: "utmp",
  description: "Empty utmp (who is logged in) in place",
  defaultEnabled: true,
  truncate: ["/var/run/utmp", "/run/utmp"],
  remove: [],
});
