import { Option, type Command } from "commander";
import { basename, join } from "node:path";
import { mkdir, mkdtemp } from "node:fs/promises";
import { openBundleSource } from "../../formats/bundle/bundle-source.js";
import { UsageError } from "../../util/errors.js";
import { formatBytes } from "../../util/human.js";
import { runCommand } from "../run-command.js";
import { FILE_UNDO_SECONDS } from "../interrupts.js";
import { BUNDLE_IMAGE_TYPES, type BundleImageType } from "../../formats/bundle/bundle-manifest.js";
import { DirectoryBundleStore } from "../../formats/bundle/directory-bundle-store.js";
import { parseBlockDeviceMappings } from "../../formats/bundle/block-device-mappings.js";
import { bundleSecretFromHex, readPrivateKey, readPublicKey } from "../../formats/bundle/bundle-keys.js";
import { writeBundle, type WriteBundleResult } from "../../formats/bundle/write-bundle.js";
import { fromEnvironment } from "./bundle-credentials.js";
import { bucketStore } from "./bundle-bucket.js";

interface BundleFlags {
  image: string;
  arch: string;
  privatekey?: string;
  cert?: string;
  ec2cert?: string;
  user?: string;
  destination?: string;
  prefix?: string;
  kernel?: string;
  ramdisk?: string;
  blockDeviceMappings?: string;
  imageType: string;
  productcodes?: string;
  format?: string;
  inputFormat?: string;
  encKey?: string;
  encIv?: string;
  partSize?: string;
  bucket?: string;
  cloud: string;
  bucketAcl?: string;
  /** The old name of --bucket-acl, kept (hidden) for scripts that use it. */
  acl?: string;
  json?: boolean;
  quiet?: boolean;
}

export function registerBundle(program: Command): void {
  program
    .command("bundle")
    .description(
      "make an instance-store image bundle (signed manifest + encrypted 10 MiB parts) as euca-bundle-image does, " +
        "streamed with no temporary copy",
    )
    .requiredOption("-i, --image <file>", "the image to bundle (its bytes as they are, unless --format is given)")
    .option("-r, --arch <arch>", "the image's architecture (i386, x86_64, armhf, …)", "x86_64")
    .option(
      "-k, --privatekey <file>",
      "the user's PEM private key, which signs the manifest (default $EC2_PRIVATE_KEY)",
    )
    .option("-c, --cert <file>", "the user's X.509 certificate (default $EC2_CERT)")
    .option("--ec2cert <file>", "the cloud's X.509 certificate the key is wrapped for (default $EUCALYPTUS_CERT)")
    .option("-u, --user <account>", "the owner's 12-digit account id (default $EC2_USER_ID)")
    .option(
      "-d, --destination <dir>",
      "the folder the bundle is written to (default, as euca2ools: a new bundle-XXXXXX in $TMPDIR, $TEMP, $TMP or /var/tmp)",
    )
    .option(
      "-p, --prefix <name>",
      "the bundle's name: <prefix>.manifest.xml, <prefix>.part.NN (default: the image's file name)",
    )
    .option("--kernel <eki>", 'the kernel image the machine boots ("true" marks a kernel image)')
    .option("--ramdisk <eri>", 'the ramdisk image the machine boots ("true" marks a ramdisk image)')
    .option("-B, --block-device-mappings <maps>", "VIRTUAL=DEVICE pairs, e.g. ami=sda1,root=/dev/sda1,ephemeral0=sdb")
    .option("--image-type <type>", "machine, kernel or ramdisk", "machine")
    .option("--productcodes <codes>", "comma-separated product codes")
    .option(
      "--format <fmt>",
      "the format of the image inside the bundle: raw bundles the input's disk, its format detected (a qcow2's " +
        "raw disk); without it the file's bytes go in as they are, as with euca-bundle-image",
    )
    .option("--input-format <fmt>", "with --format raw: the input's format, skipping detection")
    .option("--enc-key <hex>", "the AES key, 32 hex digits (reproducible bundles for tests; random when absent)")
    .option("--enc-iv <hex>", "the AES IV, 32 hex digits (with --enc-key)")
    .option("--part-size <bytes>", "part size in bytes (default 10485760, as euca2ools)")
    .option("--bucket <bucket[/prefix]>", "store the bundle straight in this bucket of the cloud's S3, no local parts")
    .option(
      "--cloud <name>",
      "with --bucket: the EC2-family cloud (env-euca: the eucarc variables; euca:REGION; aws, aws:PROFILE)",
      "env-euca",
    )
    .option(
      "--bucket-acl <canned-acl>",
      "with --bucket: the bucket's and parts' canned ACL (Eucalyptus: aws-exec-read), as for the job commands",
    )
    .addOption(new Option("--acl <canned-acl>", "the old name of --bucket-acl").hideHelp())
    .option("--json", "JSON-lines progress events and result on stdout")
    .option("-q, --quiet", "no progress bar")
    .action(async (flags: BundleFlags) => {
      const env = fromEnvironment();
      const need = (value: string | undefined, flag: string, variable: string) => {
        if (!value) throw new UsageError(`bundle needs ${flag} (or $${variable})`);
        return value;
      };
      const privateKey = need(flags.privatekey ?? env.privateKey, "-k PRIVKEY", "EC2_PRIVATE_KEY");
      const cert = need(flags.cert ?? env.cert, "-c CERT", "EC2_CERT");
      const ec2cert = need(flags.ec2cert ?? env.cloudCert, "--ec2cert CLOUDCERT", "EUCALYPTUS_CERT");
      const user = need(flags.user ?? env.userId, "-u ACCOUNT", "EC2_USER_ID").replace(/-/g, "");
      if (!BUNDLE_IMAGE_TYPES.includes(flags.imageType as BundleImageType)) {
        throw new UsageError(`--image-type ${flags.imageType}: machine, kernel or ramdisk`);
      }
      let imageType = flags.imageType as BundleImageType;
      if (flags.kernel === "true") imageType = "kernel";
      if (flags.ramdisk === "true") imageType = "ramdisk";
      if ((flags.encKey === undefined) !== (flags.encIv === undefined)) {
        throw new UsageError("--enc-key and --enc-iv go together");
      }
      const partSize = flags.partSize === undefined ? undefined : Number(flags.partSize);
      await runCommand(
        {
          command: "bundle",
          undoSeconds: FILE_UNDO_SECONDS,
          json: !!flags.json,
          quiet: !!flags.quiet,
          summaryTo: "stderr",
          summary: (r: WriteBundleResult & { destination: string }) =>
            `wrote ${r.destination.replace(/\/$/, "")}/${r.manifestName}: ${formatBytes(r.imageSize)} image in ${r.parts.length} ` +
            `part(s) of ${formatBytes(r.bundledSize)}, ${r.seconds.toFixed(2)} s`,
        },
        async ({ signal, onProgress }) => {
          const [userKey, userCertificate, cloudCertificate] = await Promise.all([
            readPrivateKey(privateKey),
            readPublicKey(cert),
            readPublicKey(ec2cert),
          ]);
          if (flags.bucket !== undefined && flags.destination !== undefined) {
            throw new UsageError("-d and --bucket: a bundle goes to a folder or to a bucket, not both");
          }
          if (flags.acl !== undefined && flags.bucketAcl !== undefined && flags.acl !== flags.bucketAcl) {
            throw new UsageError("--acl is the old name of --bucket-acl: give one of them");
          }
          const bucket = await bucketStore({ ...flags, acl: flags.bucketAcl ?? flags.acl });
          const destination = bucket
            ? bucket.label
            : (flags.destination ??
              (await mkdtemp(
                join(process.env.TMPDIR || process.env.TEMP || process.env.TMP || "/var/tmp", "bundle-"),
              )));
          if (!bucket) await mkdir(destination, { recursive: true });
          const source = await openBundleSource(flags.image, { format: flags.format, inputFormat: flags.inputFormat });
          try {
            const result = await writeBundle({
              source,
              prefix: flags.prefix ?? basename(flags.image),
              store: bucket ?? new DirectoryBundleStore(destination),
              architecture: flags.arch,
              user,
              imageType,
              kernelId: flags.kernel,
              ramdiskId: flags.ramdisk,
              blockDeviceMappings: flags.blockDeviceMappings ? parseBlockDeviceMappings(flags.blockDeviceMappings) : [],
              productCodes: flags.productcodes?.split(",").filter(Boolean),
              userKey,
              userCertificate,
              cloudCertificate,
              secret: flags.encKey && flags.encIv ? bundleSecretFromHex(flags.encKey, flags.encIv) : undefined,
              partSize,
              signal,
              onProgress,
            });
            return { ...result, destination };
          } finally {
            await source.close();
          }
        },
      );
    });
}
