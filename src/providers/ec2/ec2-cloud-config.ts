/**
 * An EC2-family cloud (Eucalyptus, or AWS itself) as euca2ools users keep it: its endpoints, the signing region,
 * the access key and secret, and the files bundling needs (the user's certificate and key, the cloud's
 * certificate). Loaded by loadEc2CloudConfig from the eucarc variables or euca2ools' .ini files.
 */
import type { Ec2TlsSettings } from "./aws-http.js";

export interface Ec2CloudConfig {
  /** The name it is known by on the command line (`env-euca`, `euca:REGION`), used in every message. */
  readonly name: string;
  /** "eucalyptus", or "ec2" when the EC2 URL is AWS's own. */
  readonly kind: "eucalyptus" | "ec2";
  /** Where it was found: "eucarc variables (EC2_URL, …)", or the .ini files that define it. */
  readonly source: string;
  readonly ec2Url: string;
  readonly s3Url?: string;
  /** The SigV4 signing region. */
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
  /** The account number (EC2_USER_ID, account-id): a bundle's manifest names it. */
  readonly userId?: string;
  /** The user's X.509 certificate and private key (EC2_CERT, EC2_PRIVATE_KEY): bundles are signed with them. */
  readonly certPath?: string;
  readonly privateKeyPath?: string;
  /** The cloud's certificate (EUCALYPTUS_CERT, the region's certificate): bundle keys are encrypted to it. */
  readonly cloudCertPath?: string;
  readonly tls: Ec2TlsSettings;
}
