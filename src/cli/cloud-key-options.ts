import type { Command } from "commander";
import { optionsToVariables } from "./cloud-options.js";

/** The cloud-key options and the variables they set (read by providers/eucalyptus/eucalyptus-settings.ts). */
const CLOUD_KEY_OPTIONS = [
  ["cloudPrivateKey", "CHROMOGENIC_CLOUD_PRIVATE_KEY"],
  ["bundleSignerCert", "CHROMOGENIC_BUNDLE_SIGNER_CERT"],
  ["skipBundleSignatureCheck", "CHROMOGENIC_SKIP_BUNDLE_SIGNATURE_CHECK"],
] as const;

/**
 * Adds the options with which a Eucalyptus administrator reads the bundles the cloud made itself (BundleInstance:
 * signed by a node controller, their key wrapped for the cloud only), as `unbundle -k cloud.key -c node-cert.pem`
 * does. Like the connection options they travel as variables, so a job's worker and a resume see them; the key's
 * path travels, never the key.
 */
export function cloudKeyOptions<T extends Command>(command: T): T {
  command.option(
    "--cloud-private-key <file>",
    "Eucalyptus admins: the cloud's private key (cloud-pk.pem, mode 600), to read bundles the cloud made itself",
  );
  command.option(
    "--bundle-signer-cert <file>",
    "with --cloud-private-key: the certificate(s) that signed them (the node controllers' node-cert.pem)",
  );
  command.option(
    "--skip-bundle-signature-check",
    "with --cloud-private-key and no signer certificate: do not check who signed the manifest (warned; unsafe " +
      "unless only the cloud can write to the bucket)",
  );
  command.hook("preAction", (self) => optionsToVariables(self.opts(), CLOUD_KEY_OPTIONS));
  return command;
}
