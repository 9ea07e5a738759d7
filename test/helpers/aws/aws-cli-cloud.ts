/**
 * The AWS the CLI tests reach: a FakeAwsAccount behind the EBS direct APIs server and the EC2 server (both
 * written from the AWS API reference, every request's SigV4 checked), named `aws` to the CLI through the
 * variables AWS users set (AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL_EC2, AWS_ENDPOINT_URL_EBS); and the disks and
 * AMIs those tests start from.
 */
import { writeFile } from "node:fs/promises";
import { buildGpt, GPT_TYPES } from "../../../src/guest/partitions/gpt-writer.js";
import { randomGuid } from "../../../src/guest/partitions/guid.js";
import { makeRaw, pattern, scratch, type Region } from "../tools.js";
import { awsCliEnv } from "./aws-home.js";
import { EbsDirectServer, type EbsServerKnobs } from "./ebs-direct-server.js";
import { startEc2AwsServer } from "./ec2-aws-server.js";
import { FakeAwsAccount, GIB, type FakeImage } from "./fake-aws-account.js";
import { readRawBlocks } from "./snapshot-raw.js";

const MiB = 2 ** 20;
const ESP = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";

/**
 * A 1 GiB sparse disk that starts under BIOS and UEFI (GPT with a BIOS boot partition, an EFI system partition
 * and boot code in the protective MBR, as distributions' cloud images are laid out), with data scattered over
 * a Linux partition.
 */
export async function hybridDisk(path: string, seed: number): Promise<void> {
  const sectors = GIB / 512;
  const gpt = buildGpt(
    sectors,
    [
      { number: 1, firstLba: 2048, lastLba: 4095, type: GPT_TYPES.biosBoot, partUuid: randomGuid() },
      { number: 2, firstLba: 4096, lastLba: 266239, type: ESP, partUuid: randomGuid() },
      { number: 3, firstLba: 266240, lastLba: sectors - 34, type: GPT_TYPES.linuxFilesystem, partUuid: randomGuid() },
    ],
    randomGuid(),
    Buffer.from([0xeb, 0x63, 0x90]),
  );
  const regions: Region[] = [
    { offset: 0, data: gpt.head },
    { offset: gpt.tailOffset, data: gpt.tail },
    { offset: 2 * MiB, data: pattern(300 * 1024, seed) },
    { offset: 200 * MiB + 4321, data: pattern(3 * MiB, seed + 1) },
    { offset: 700 * MiB - 100, data: pattern(MiB, seed + 2) },
  ];
  await makeRaw(path, GIB, regions);
}

/**
 * A fresh account with its two servers (closed after the test) and the environment of a CLI user of it: keys,
 * region and endpoints, no AWS configuration files, state and temporary files in the test's own directory.
 */
export async function awsCloud(t: { after(fn: () => Promise<void> | void): void }, knobs: EbsServerKnobs = {}) {
  const dir = await scratch(t, "chromo-aws-");
  const account = new FakeAwsAccount({ region: "eu-west-1" });
  const ebsServer = await EbsDirectServer.start(account, knobs);
  t.after(() => ebsServer.close());
  const { server: ec2Server } = await startEc2AwsServer(t, account);
  const key = account.addCredential();
  const env: NodeJS.ProcessEnv = {
    ...awsCliEnv(dir, key, account.region),
    AWS_ENDPOINT_URL_EC2: ec2Server.url,
    AWS_ENDPOINT_URL_EBS: ebsServer.url,
  };
  return { dir, account, ebsServer, ec2Server, env, secret: key.secretAccessKey };
}

/** An EBS-backed AMI of `diskPath` (1 GiB) in the account, as RegisterImage would have made it (uefi unless said). */
export function addAmi(
  account: FakeAwsAccount,
  diskPath: string,
  name: string,
  fields: Partial<Pick<FakeImage, "architecture" | "bootMode" | "description">> = {},
): FakeImage {
  const { bootMode = "uefi", ...rest } = fields;
  return account.addImageOfFile(diskPath, name, bootMode, rest);
}

/** The non-zero 512 KiB blocks of a raw disk file, by index: what a snapshot of it holds. */
export async function blocksOfFile(path: string): Promise<Map<number, Buffer>> {
  return (await readRawBlocks(path)).blocks;
}

/**
 * `env` with the account's keys moved from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY into profile `profile` of its
 * credentials file, as users keep them: the CLI then reaches the account as `aws:PROFILE`.
 */
export async function withKeysInProfile(env: NodeJS.ProcessEnv, profile: string): Promise<NodeJS.ProcessEnv> {
  const { AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ...withoutKeys } = env;
  await writeFile(
    env.AWS_SHARED_CREDENTIALS_FILE!,
    `[${profile}]\naws_access_key_id = ${AWS_ACCESS_KEY_ID}\naws_secret_access_key = ${AWS_SECRET_ACCESS_KEY}\n`,
    { mode: 0o600 },
  );
  return withoutKeys;
}
