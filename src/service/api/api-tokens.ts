/**
 * The API's bearer tokens, from a YAML file the operator keeps (`api.tokens` in the service configuration):
 *
 *   tokens:
 *     - name: portal                # who: the jobs' owner and the audit log's `who`
 *       sha256: 9f86d0…             # hex SHA-256 of the token; the token itself is never stored
 *       clouds: ["openstack-a", "local:/srv/images"]   # or ["*"]
 *       kinds: ["migrate", "export"]                   # or ["*"]
 *       admin: false                # true: sees and cancels every owner's jobs
 *
 * Tokens are long random strings (newApiToken: 32 random bytes), so one SHA-256 is enough to keep the file
 * useless to whoever reads it; a slow hash would protect guessable passwords, which these are not. A presented
 * token is hashed and compared with every entry in constant time, so the answer's timing tells nothing of how
 * close a guess came or which entry it matched.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { JOB_KINDS, jobClouds, type JobKind, type JobSpec } from "../job-spec.js";

export const TokenEntrySchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.@-]{1,64}$/, "a name of letters, digits and _.@- (at most 64)"),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, "the token's SHA-256 as 64 lowercase hex digits"),
    clouds: z.array(z.string().min(1)).default([]),
    kinds: z.array(z.union([z.enum(JOB_KINDS as [JobKind, ...JobKind[]]), z.literal("*")])).default([]),
    admin: z.boolean().default(false),
  })
  .strict();

export const TokensFileSchema = z.object({ tokens: z.array(TokenEntrySchema) }).strict();

export type TokenEntry = z.infer<typeof TokenEntrySchema>;

/** Who a request comes from: a token's entry without its hash. */
export interface Principal {
  readonly name: string;
  readonly clouds: readonly string[];
  readonly kinds: readonly string[];
  readonly admin: boolean;
}

export class ApiTokens {
  private readonly entries: { hash: Buffer; principal: Principal }[];

  constructor(entries: readonly TokenEntry[]) {
    const names = new Set<string>();
    this.entries = entries.map((entry) => {
      if (names.has(entry.name)) throw new Error(`token name "${entry.name}" appears twice`);
      names.add(entry.name);
      const { sha256, ...principal } = entry;
      return { hash: Buffer.from(sha256, "hex"), principal };
    });
  }

  static async load(file: string): Promise<ApiTokens> {
    const text = await readFile(file, "utf8");
    const parsed = TokensFileSchema.safeParse(parseYaml(text));
    if (!parsed.success) throw new Error(`${file}: ${z.prettifyError(parsed.error)}`);
    return new ApiTokens(parsed.data.tokens);
  }

  /** The entry `token` matches, or undefined. Every entry is compared, whatever matched first. */
  identify(token: string): Principal | undefined {
    const presented = sha256(token);
    let found: Principal | undefined;
    for (const entry of this.entries) if (timingSafeEqual(entry.hash, presented)) found ??= entry.principal;
    return found;
  }
}

/** Why `principal` may not submit `spec`, or undefined when it may. */
export function refusal(principal: Principal, spec: JobSpec): string | undefined {
  if (!principal.kinds.includes("*") && !principal.kinds.includes(spec.kind))
    return `token "${principal.name}" may not run ${spec.kind} jobs`;
  for (const cloud of jobClouds(spec))
    if (!principal.clouds.includes("*") && !principal.clouds.includes(cloud))
      return `token "${principal.name}" may not use cloud "${cloud}"`;
  return undefined;
}

/** The clouds a job names (file jobs name none). */
/** A new token and the entry for the tokens file; the token is shown once to whoever asked for it. */
export function newApiToken(
  name: string,
  rights: { clouds?: string[]; kinds?: string[]; admin?: boolean } = {},
): { token: string; entry: TokenEntry } {
  const token = `cgt_${randomBytes(32).toString("base64url")}`;
  const entry = TokenEntrySchema.parse({
    name,
    sha256: hashApiToken(token),
    clouds: rights.clouds ?? [],
    kinds: rights.kinds ?? [],
    admin: rights.admin ?? false,
  });
  return { token, entry };
}

/** What the tokens file stores for `token`. */
export function hashApiToken(token: string): string {
  return sha256(token).toString("hex");
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}
