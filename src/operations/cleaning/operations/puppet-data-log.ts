import { globOperation } from "../glob-operation.js";

export default globOperation({
  name: "puppet-data-log",
  description: "Remove Puppet's client data, reports, SSL identity and logs",
  defaultEnabled: true,
  remove: [
    "/var/log/puppet/*",
    "/var/lib/puppet/client_data/*",
    "/var/lib/puppet/client_yaml/*",
    "/var/lib/puppet/clientbucket/*",
    "/var/lib/puppet/state/*",
    "/var/lib/puppet/reports/*",
    "/var/lib/puppet/ssl/*",
    "/var/lib/puppet/run/*.pid",
    "/etc/puppetlabs/puppet/ssl/*",
  ],
});
