/**
 * The eucarc variables euca2ools reads when a bundle command's key, certificates or account are not given.
 */
export interface BundleCredentialDefaults {
  readonly privateKey?: string;
  readonly cert?: string;
  readonly cloudCert?: string;
  readonly userId?: string;
}

export function fromEnvironment(env: NodeJS.ProcessEnv = process.env): BundleCredentialDefaults {
  const set = (name: string) => (env[name] ? env[name] : undefined);
  return {
    privateKey: set("EC2_PRIVATE_KEY") ?? set("EUCA_PRIVATE_KEY"),
    cert: set("EC2_CERT") ?? set("EUCA_CERT"),
    cloudCert: set("EUCALYPTUS_CERT"),
    userId: set("EC2_USER_ID"),
  };
}
