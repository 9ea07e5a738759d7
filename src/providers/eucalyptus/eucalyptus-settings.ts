/**
 * What a Eucalyptus store needs beyond its credentials, from the environment (the CLI's --bucket, --bucket-acl
 * and --node-* options set these variables, which also carries them to a job's worker and into a resume, as
 * the OpenStack options travel):
 *
 *   CHROMOGENIC_BUNDLE_BUCKET   the bucket new bundles go to (default chromogenic-ACCOUNT, or chromogenic-images)
 *   CHROMOGENIC_BUNDLE_ACL      the canned ACL of that bucket and its objects (Eucalyptus: aws-exec-read; unset
 *                               by default, since Swift and Ceph refuse it)
 *   CHROMOGENIC_NODE_SSH_KEY    a private key for root on the node controllers: an instance-store instance is
 *                               then imaged by copying its root disk off its node (the original's way) rather
 *                               than by BundleInstance
 *   CHROMOGENIC_NODE_KNOWN_HOSTS / CHROMOGENIC_NODE_HOST_KEY
 *                               how the node's host key is checked (a known_hosts file, or a SHA256: fingerprint)
 *   CHROMOGENIC_NODE_USER, CHROMOGENIC_NODE_PORT, CHROMOGENIC_NODE_INSTANCES_DIR
 *                               root, 22 and /var/lib/eucalyptus/instances/work unless set
 *   CHROMOGENIC_CLOUD_PRIVATE_KEY
 *                               for administrators: the cloud's private key (Eucalyptus' cloud-pk.pem), which
 *                               opens the bundles the cloud made itself (BundleInstance); refused unless only its
 *                               owner can read it
 *   CHROMOGENIC_BUNDLE_SIGNER_CERT
 *                               the certificate(s) that sign those bundles (the node controllers' node-cert.pem,
 *                               one per cluster, in one PEM file); the user's certificate is tried too
 *   CHROMOGENIC_SKIP_BUNDLE_SIGNATURE_CHECK
 *                               with the cloud's key only: take a manifest without checking its signature (a
 *                               warning each time; see CloudKeySettings)
 */
import { UsageError } from "../../util/errors.js";
import type { HostKeyPolicy } from "./host-key-check.js";

type Env = Readonly<Record<string, string | undefined>>;

export interface NodeCopySettings {
  readonly privateKeyPath: string;
  readonly hostKey: HostKeyPolicy;
  readonly username?: string;
  readonly port?: number;
  readonly instancesDir?: string;
}

/**
 * How an administrator reads a bundle wrapped for the cloud alone. Skipping the signature check is allowed only
 * with the cloud's key, and never silently: the cloud's certificate is public, so anyone who can write to the
 * bucket can wrap a key for it and make a manifest whose digests match parts of their own choosing; only the
 * signature says the node (or the user) wrote it. Without it the digests still catch damage in transit or at rest.
 */
export interface CloudKeySettings {
  readonly privateKeyPath: string;
  readonly signerCertPath?: string;
  readonly skipSignatureCheck?: boolean;
}

export interface EucalyptusSettings {
  readonly bucket: string;
  readonly cannedAcl?: string;
  readonly nodeCopy?: NodeCopySettings;
  readonly cloudKey?: CloudKeySettings;
}

export function eucalyptusSettings(env: Env, account: string | undefined): EucalyptusSettings {
  const bucket =
    env.CHROMOGENIC_BUNDLE_BUCKET || (account ? `chromogenic-${account.toLowerCase()}` : "chromogenic-images");
  return {
    bucket,
    ...(env.CHROMOGENIC_BUNDLE_ACL ? { cannedAcl: env.CHROMOGENIC_BUNDLE_ACL } : {}),
    ...(env.CHROMOGENIC_NODE_SSH_KEY ? { nodeCopy: nodeCopySettings(env, env.CHROMOGENIC_NODE_SSH_KEY) } : {}),
    ...cloudKeySettings(env),
  };
}

function cloudKeySettings(env: Env): { cloudKey?: CloudKeySettings } {
  const privateKeyPath = env.CHROMOGENIC_CLOUD_PRIVATE_KEY;
  const signerCertPath = env.CHROMOGENIC_BUNDLE_SIGNER_CERT;
  const skip = env.CHROMOGENIC_SKIP_BUNDLE_SIGNATURE_CHECK;
  const skipSignatureCheck = !!skip && !/^(0|false|no)$/i.test(skip);
  if (!privateKeyPath) {
    if (skipSignatureCheck || signerCertPath) {
      throw new UsageError(
        `${skipSignatureCheck ? "--skip-bundle-signature-check" : "--bundle-signer-cert"} goes with the cloud's ` +
          "private key (--cloud-private-key, CHROMOGENIC_CLOUD_PRIVATE_KEY): the user's own bundles are checked " +
          "with the user's certificate",
      );
    }
    return {};
  }
  if (skipSignatureCheck && signerCertPath) {
    throw new UsageError("--skip-bundle-signature-check and --bundle-signer-cert: check the signature or do not");
  }
  return {
    cloudKey: {
      privateKeyPath,
      ...(signerCertPath ? { signerCertPath } : {}),
      ...(skipSignatureCheck ? { skipSignatureCheck } : {}),
    },
  };
}

function nodeCopySettings(env: Env, privateKeyPath: string): NodeCopySettings {
  const fingerprint = env.CHROMOGENIC_NODE_HOST_KEY;
  const knownHostsPath = env.CHROMOGENIC_NODE_KNOWN_HOSTS;
  if (!fingerprint && !knownHostsPath) {
    throw new UsageError(
      "copying a disk off a node controller needs its host key checked: --node-known-hosts FILE or " +
        "--node-host-key SHA256:… (CHROMOGENIC_NODE_KNOWN_HOSTS / CHROMOGENIC_NODE_HOST_KEY)",
    );
  }
  const port = env.CHROMOGENIC_NODE_PORT ? Number(env.CHROMOGENIC_NODE_PORT) : undefined;
  if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) {
    throw new UsageError(`node controller port "${env.CHROMOGENIC_NODE_PORT}" is not a TCP port`);
  }
  return {
    privateKeyPath,
    hostKey: fingerprint ? { fingerprint } : { knownHostsPath: knownHostsPath! },
    ...(env.CHROMOGENIC_NODE_USER ? { username: env.CHROMOGENIC_NODE_USER } : {}),
    ...(port ? { port } : {}),
    ...(env.CHROMOGENIC_NODE_INSTANCES_DIR ? { instancesDir: env.CHROMOGENIC_NODE_INSTANCES_DIR } : {}),
  };
}
