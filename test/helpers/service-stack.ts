/**
 * A whole service in the test's process, as `chromogenic serve` runs one: the real API (svc-api's fixture: a
 * random port, a SQLite job store, a tokens file, allowed folders in/ and out/) serving the repository's web/,
 * and a pool of real workers running what it queues with the library's jobs. The clouds are local stores:
 * `local:<in>` holds the sources, `local:<out>` receives migrations. Jobs that must last a few seconds (to be
 * watched, or cancelled while they run) migrate random data into streamOptimized VMDK, whose deflate runs at
 * tens of MB/s.
 */
import { randomFill } from "node:crypto";
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { LocalProvider } from "../../src/providers/local/local-provider.js";
import { startWorkerPool, type WorkerPool } from "../../src/service/worker-pool.js";
import { packageFile } from "../../src/util/package-files.js";
import { startApi, type ApiFixture } from "../service/api/api-fixture.js";

const MiB = 2 ** 20;
const fillRandom = promisify(randomFill);

export interface ServiceStack extends ApiFixture {
  /** The source store (`local:<in>`) and the destination store (`local:<out>`). */
  readonly source: string;
  readonly destination: string;
  readonly pool: WorkerPool;
  /** Stores an image of `mib` MiB of random data named `name` in the source store. */
  addImage(name: string, mib: number): Promise<void>;
  /** The images of the destination store, by name. */
  destinationImages(): Promise<string[]>;
}

export async function startServiceStack(
  t: { after(fn: () => Promise<void> | void): void },
  options: { slots?: number } = {},
): Promise<ServiceStack> {
  const api = await startApi({ web: packageFile("web") });
  // The workers run in this process: their jobs' state goes where the library puts it, here under the fixture.
  const previousStateDir = process.env.CHROMOGENIC_STATE_DIR;
  process.env.CHROMOGENIC_STATE_DIR = join(api.dir, "state");
  const pool = startWorkerPool(api.store, {
    slots: options.slots ?? 2,
    pollMs: 50,
    idlePollMs: 200,
    minFreeBytes: 0,
    workDir: api.dir,
    leaseMs: 10_000,
  });
  t.after(async () => {
    await pool.stop({ deadlineMs: 5_000 });
    await api.close();
    if (previousStateDir === undefined) delete process.env.CHROMOGENIC_STATE_DIR;
    else process.env.CHROMOGENIC_STATE_DIR = previousStateDir;
  });
  const sources = new LocalProvider(api.inDir);
  return {
    ...api,
    source: `local:${api.inDir}`,
    destination: `local:${api.outDir}`,
    pool,
    async addImage(name, mib) {
      const file = join(api.dir, `${name}.raw`);
      const h = await open(file, "w");
      try {
        const chunk = Buffer.alloc(16 * MiB);
        for (let done = 0; done < mib * MiB; done += chunk.length) {
          await fillRandom(chunk);
          await h.write(chunk, 0, Math.min(chunk.length, mib * MiB - done));
        }
      } finally {
        await h.close();
      }
      await sources.uploadImage(
        { name, diskFormat: "raw", sizeBytes: mib * MiB },
        createReadStream(file, { highWaterMark: MiB }),
      );
    },
    async destinationImages() {
      const names: string[] = [];
      for await (const image of new LocalProvider(api.outDir).listImages()) names.push(image.name);
      return names.sort();
    },
  };
}
