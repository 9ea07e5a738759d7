/**
 * What a Eucalyptus node controller does for a BundleInstance task, for the stand-in server: bundle the
 * instance's root disk and store the bundle in the task's bucket under its prefix. Eucalyptus 4.4's node
 * (node/handlers_default.c, bundling_thread) runs `euca-run-workflow read-raw/up-bundle` with the disk's backing
 * path, `--signing-key-path node-pk.pem`, `--encryption-cert-path cloud-cert.pem`, the task's prefix and bucket,
 * `--arch x86_64` and `--account 123456789012` (both fixed there, marked TODO), and the instance's --eki/--eri;
 * the workflow (tools/imaging/bin/euca-run-workflow) hands that to euca-bundle-and-upload-image with
 * `--privatekey` the node's key and both `--cert` and `--ec2cert` the cloud's certificate. So the bundle is
 * signed by the node and its key is wrapped for the cloud only: the user's own key cannot open it.
 *
 * Here the bundle is written with chromogenic's own library (formats/bundle/write-bundle.ts into
 * providers/ec2/s3-bundle-store.ts), from a disk file the test gives the instance, into the real Swift.
 */
import type { KeyObject } from "node:crypto";
import { openImage } from "../../src/formats/engine/open-image.js";
import { writeBundle } from "../../src/formats/bundle/write-bundle.js";
import { readPrivateKey, readPublicKey } from "../../src/formats/bundle/bundle-keys.js";
import { S3BundleStore } from "../../src/providers/ec2/s3-bundle-store.js";
import type { S3Connection } from "../../src/providers/ec2/s3-connection.js";

/** What the node bundles one instance's disk into. */
export interface NodeBundleJob {
  readonly disk: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly kernelId?: string;
  readonly ramdiskId?: string;
}

export type NodeBundler = (job: NodeBundleJob) => Promise<void>;

/** The node's keys: its own private key signs, the cloud's certificate encrypts. */
export interface NodeBundlerKeys {
  readonly nodeKeyPath: string;
  readonly cloudCertPath: string;
}

/** The account euca-run-workflow is given (node/handlers_default.c passes this constant). */
const NODE_BUNDLE_ACCOUNT = "123456789012";

export function nodeControllerBundler(s3: S3Connection, keys: NodeBundlerKeys): NodeBundler {
  let loaded: Promise<{ nodeKey: KeyObject; cloudCert: KeyObject }> | undefined;
  return async (job) => {
    loaded ??= (async () => ({
      nodeKey: await readPrivateKey(keys.nodeKeyPath),
      cloudCert: await readPublicKey(keys.cloudCertPath),
    }))();
    const { nodeKey, cloudCert } = await loaded;
    const { source } = await openImage(job.disk, { format: "raw" });
    try {
      await writeBundle({
        source,
        prefix: job.prefix,
        store: new S3BundleStore(s3, job.bucket),
        architecture: "x86_64",
        user: NODE_BUNDLE_ACCOUNT,
        imageType: "machine",
        ...(job.kernelId ? { kernelId: job.kernelId } : {}),
        ...(job.ramdiskId ? { ramdiskId: job.ramdiskId } : {}),
        userKey: nodeKey,
        userCertificate: cloudCert,
        cloudCertificate: cloudCert,
      });
    } finally {
      await source.close();
    }
  };
}
