/**
 * The last check before a job counts as done: a passthrough's two recorded hashes agree (when the stores use
 * one algorithm), and a file output opens as the format it claims.
 */
import { resolve } from "node:path";
import { openImage } from "../formats/engine/open-image.js";
import type { ProviderImage } from "../providers/provider.js";
import type { JobRun } from "./job-run.js";
import { isOvaFormat } from "../formats/ova/ova-format.js";
import { VerificationError } from "../util/errors.js";

export async function verifyResult(run: JobRun, image: ProviderImage | undefined): Promise<void> {
  const src = run.state.source!;
  const plan = run.state.plan!;
  const dest = run.request.destination;
  if (image && plan.mode === "passthrough" && src.hash && image.hash) {
    if (src.hash.algorithm === image.hash.algorithm && src.hash.value !== image.hash.value) {
      throw new VerificationError(
        `the destination's ${image.hash.algorithm} (${image.hash.value}) differs from the source's (${src.hash.value})`,
      );
    }
  }
  if (dest.kind === "file" && !isOvaFormat(dest.format)) {
    // The output opens as what it claims to be, with the disk's size.
    const { source } = await openImage(resolve(dest.path), { format: dest.format });
    await source.close();
  }
}
