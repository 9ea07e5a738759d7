/**
 * The metadata the local store keeps beside each image's bytes (`<id>.json` next to `<id>.img`): what Glance
 * keeps in its database, minus what a single-user directory has no use for. Validated on every read, so a
 * hand-edited or truncated record is a clear error rather than a crash later.
 */
import { z } from "zod";

export const LocalImageRecordSchema = z.object({
  id: z.string().regex(/^[0-9a-f-]{8,64}$/, "image ids are lowercase hex and dashes"),
  name: z.string(),
  diskFormat: z.string().min(1),
  sizeBytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  properties: z.record(z.string(), z.string()),
  visibility: z.enum(["private", "shared", "public"]),
  createdAt: z.string(),
});

export type LocalImageRecord = z.infer<typeof LocalImageRecordSchema>;
