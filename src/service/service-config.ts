/**
 * The service's configuration file (YAML), what `chromogenic serve` reads: the folders jobs may touch
 * (service-paths.ts) and how the API listens, who may call it and how hard. Relative paths in the file are
 * taken from the file's own folder, so a configuration can travel with its tokens file and certificates.
 *
 *   folders:
 *     read: [/srv/images]
 *     write: [/srv/exports]
 *   api:
 *     host: 0.0.0.0
 *     port: 8443
 *     tls: { cert: tls/cert.pem, key: tls/key.pem }
 *     tokens: tokens.yaml
 *     auditLog: /var/log/chromogenic/audit.jsonl
 *     rateLimit: { max: 300, windowSeconds: 60 }
 */
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { AllowedFoldersSchema } from "./service-paths.js";

export const ApiConfigSchema = z
  .object({
    host: z.string().default("127.0.0.1"),
    port: z.number().int().min(0).max(65535).default(8470),
    tls: z
      .object({ cert: z.string().min(1), key: z.string().min(1) })
      .strict()
      .optional()
      .describe("PEM files; without them the API speaks plain HTTP (put it behind a TLS proxy then)"),
    tokens: z.string().min(1).describe("the tokens file (api-tokens.ts)"),
    auditLog: z.string().min(1).optional().describe("file the audit lines are appended to; stderr when absent"),
    rateLimit: z
      .object({
        max: z.number().int().positive().default(600),
        windowSeconds: z.number().positive().default(60),
      })
      .strict()
      .default({ max: 600, windowSeconds: 60 })
      .describe("requests per token (per address without one) in a window"),
    bodyLimit: z
      .number()
      .int()
      .positive()
      .max(16 * 2 ** 20)
      .default(64 * 1024),
    trustProxy: z
      .union([z.boolean(), z.string().min(1)])
      .default(false)
      .describe(
        "behind a reverse proxy: true, or its addresses (`127.0.0.1,10.0.0.0/8`), so that the audit log and the " +
          "rate limit see the client's address from X-Forwarded-For",
      ),
    web: z.string().min(1).optional().describe("the web page's folder (default: web/ of the installed package)"),
    eventPollMs: z.number().int().min(10).default(200).describe("how often an event stream looks for new events"),
    heartbeatSeconds: z.number().positive().default(15).describe("an idle event stream's keep-alive comment"),
    metricsPollMs: z.number().int().min(100).default(1000).describe("how often finished jobs are looked for"),
  })
  .strict();

export const ServiceConfigSchema = z
  .object({
    folders: AllowedFoldersSchema.default({ read: [], write: [] }),
    api: ApiConfigSchema,
  })
  .strict();

export type ApiConfig = z.infer<typeof ApiConfigSchema>;
export type ServiceConfig = z.infer<typeof ServiceConfigSchema>;

/** Reads and checks the configuration file; paths in it are made absolute from its folder. */
export async function readServiceConfig(file: string): Promise<ServiceConfig> {
  const parsed = ServiceConfigSchema.safeParse(parseYaml(await readFile(file, "utf8")) ?? {});
  if (!parsed.success) throw new Error(`${file}: ${z.prettifyError(parsed.error)}`);
  const base = dirname(resolve(file));
  const at = (path: string) => resolve(base, path);
  const { folders, api } = parsed.data;
  return {
    folders: { read: folders.read.map(at), write: folders.write.map(at) },
    api: {
      ...api,
      tokens: at(api.tokens),
      ...(api.tls ? { tls: { cert: at(api.tls.cert), key: at(api.tls.key) } } : {}),
      ...(api.auditLog ? { auditLog: at(api.auditLog) } : {}),
      ...(api.web ? { web: at(api.web) } : {}),
    },
  };
}
