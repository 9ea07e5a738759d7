/**
 * The Glance v2 image record, validated with zod at the boundary. Extra (custom) properties are kept: Glance
 * returns them as top-level string fields next to the standard ones.
 */
import { z } from "zod";

export const GlanceImageSchema = z
  .object({
    id: z.string(),
    name: z.string().nullish(),
    status: z.string(),
    visibility: z.string(),
    owner: z.string().nullish(),
    size: z.number().nullish(),
    virtual_size: z.number().nullish(),
    disk_format: z.string().nullish(),
    container_format: z.string().nullish(),
    checksum: z.string().nullish(),
    os_hash_algo: z.string().nullish(),
    os_hash_value: z.string().nullish(),
    tags: z.array(z.string()).default([]),
    protected: z.boolean().optional(),
    created_at: z.string().optional(),
    updated_at: z.string().optional(),
  })
  .loose();

export type GlanceImage = z.infer<typeof GlanceImageSchema>;

export const GlanceImageListSchema = z.object({
  images: z.array(GlanceImageSchema),
  next: z.string().optional(),
});

/** The part of Glance's image schema (GET /v2/schemas/image) that lists the disk formats it accepts. */
export const GlanceImageSchemaDocument = z.object({
  properties: z.object({
    disk_format: z.object({ enum: z.array(z.string().nullable()).max(64) }),
  }),
});

export const GlanceMemberSchema = z.object({
  image_id: z.string(),
  member_id: z.string(),
  status: z.enum(["pending", "accepted", "rejected"]),
});

export type GlanceMember = z.infer<typeof GlanceMemberSchema>;

export type ImageVisibility = "private" | "shared" | "community" | "public";

/** Fields of the image record Glance defines itself; everything else is a custom property. */
const STANDARD_FIELDS = new Set([
  "id",
  "name",
  "status",
  "visibility",
  "owner",
  "size",
  "virtual_size",
  "disk_format",
  "container_format",
  "checksum",
  "os_hash_algo",
  "os_hash_value",
  "tags",
  "protected",
  "created_at",
  "updated_at",
  "self",
  "file",
  "schema",
  "min_disk",
  "min_ram",
  "direct_url",
  "locations",
  "os_hidden",
  "stores",
]);

/** The custom properties of an image (string-valued fields that are not Glance's own). */
export function customProperties(image: GlanceImage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(image)) if (!STANDARD_FIELDS.has(k) && typeof v === "string") out[k] = v;
  return out;
}
