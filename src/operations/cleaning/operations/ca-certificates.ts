import { defineOperation } from "../cleaning-operation.js";

/** Where virt-sysprep looks: the local CA's and TLS service's certificates and keys (Red Hat layout). */
const CERTIFICATES = [
  "/etc/pki/CA/certs/*.crt",
  "/etc/pki/CA/crl/*.crt",
  "/etc/pki/CA/newcerts/*.crt",
  "/etc/pki/CA/private/*.key",
  "/etc/pki/tls/private/*.key",
  "/etc/pki/tls/certs/*.crt",
];

/** The distribution's trust bundles live among them and stay. */
const BUNDLES = new Set(["/etc/pki/tls/certs/ca-bundle.crt", "/etc/pki/tls/certs/ca-bundle.trust.crt"]);

export default defineOperation({
  name: "ca-certificates",
  description:
    "Remove the certificates and keys of the local CA and TLS services under /etc/pki (CA/, tls/private, tls/certs except the ca-bundle files)",
  defaultEnabled: false,
  families: "all",
  async perform(ctx) {
    // virt-sysprep then runs update-ca-trust in the guest. None of these paths is a trust-store source (the
    // sources are /etc/pki/ca-trust/source and /usr/share/pki/ca-trust-source), so the extracted store
    // would come out the same: nothing to rebuild here, and nothing of the guest runs on the host.
    for (const pattern of CERTIFICATES)
      for (const path of await ctx.glob(pattern)) if (!BUNDLES.has(path)) await ctx.remove(path);
  },
});
