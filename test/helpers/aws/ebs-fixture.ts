/**
 * What the EBS direct APIs tests share: a 1 GiB raw disk with data scattered over it (a few MiB, some of it
 * straddling 512 KiB blocks, explicit zeros among it), a fake account with a key, the EBS server written from
 * the reference over it, and an EbsConnection to that server.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { EbsConnection, type EbsSettings } from "../../../src/providers/aws/ebs-connection.js";
import { makeRaw, mixedRegions, pattern, scratch, type Region } from "../tools.js";
import { EbsDirectServer, type EbsServerKnobs } from "./ebs-direct-server.js";
import { FakeAwsAccount, GIB } from "./fake-aws-account.js";

const MiB = 2 ** 20;

export interface TestDisk {
  readonly path: string;
  readonly bytes: Buffer;
}

/** A 1 GiB sparse raw disk: the standard mixed regions and 240 scattered 40 KiB runs (about 10 MiB). */
export async function scatteredDisk(dir: string): Promise<TestDisk> {
  const regions: Region[] = [...mixedRegions(GIB)];
  for (let i = 0; i < 240; i++) {
    const offset = 8 * MiB + i * 4 * MiB + ((i * 1_234_567) % (3 * MiB));
    regions.push({ offset, data: pattern(40 * 1024, i + 100) });
  }
  const path = join(dir, "disk.raw");
  await makeRaw(path, GIB, regions);
  return { path, bytes: await readFile(path) };
}

export interface EbsRig {
  readonly account: FakeAwsAccount;
  readonly server: EbsDirectServer;
  readonly ebs: EbsConnection;
  readonly dir: string;
  readonly secret: string;
}

/** A fake account, the EBS server over it and a connection with a valid key; all closed after the test. */
export async function ebsRig(
  t: { after(fn: () => Promise<void> | void): void },
  knobs: EbsServerKnobs = {},
  settings: Partial<EbsSettings> = {},
): Promise<EbsRig> {
  const dir = await scratch(t, "chromo-ebs-");
  const account = new FakeAwsAccount({ region: "eu-west-1" });
  const key = account.addCredential();
  const server = await EbsDirectServer.start(account, knobs);
  const ebs = new EbsConnection({
    cloud: "ebs-test",
    region: account.region,
    endpoint: server.url,
    credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
    retryBaseDelayMs: 5,
    ...settings,
  });
  t.after(async () => {
    ebs.destroy();
    await server.close();
  });
  return { account, server, ebs, dir, secret: key.secretAccessKey };
}
