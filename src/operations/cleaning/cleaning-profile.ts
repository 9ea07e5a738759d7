import { readdir, readFile, stat } from "node:fs/promises";
import { parse, YAMLParseError } from "yaml";
import { z } from "zod";
import { UsageError } from "../../formats/errors.js";
import { packageFile } from "../../util/package-files.js";
import { findOperation } from "./operation-registry.js";
import { applySelection } from "./operation-selection.js";

/** Built-in profiles ship in the package's top-level `profiles/` folder. */
export const BUILT_IN_PROFILES_DIR = packageFile("profiles/");

const ProfileFile = z.strictObject({
  description: z.string().optional(),
  /** virt-sysprep-style selection, as one string or a list of tokens. */
  operations: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
  /** Per-operation parameters, each checked against that operation's own schema. */
  parameters: z.record(z.string(), z.record(z.string(), z.unknown())).optional(),
});

export interface CleaningProfile {
  readonly name: string;
  readonly source: string;
  readonly description: string;
  readonly selection: ReadonlySet<string>;
  readonly parameters: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
}

/** Parses and validates a profile's YAML text; every problem is a UsageError naming the file. */
export function parseProfile(text: string, source: string, name: string): CleaningProfile {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    const where = e instanceof YAMLParseError && e.linePos ? ` at line ${e.linePos[0].line}` : "";
    throw new UsageError(`profile ${source}: not valid YAML${where}: ${(e as Error).message.split("\n")[0]}`);
  }
  const r = ProfileFile.safeParse(doc);
  if (!r.success) throw new UsageError(`profile ${source}: ${z.prettifyError(r.error).replace(/\n/g, "; ")}`);
  const ops = typeof r.data.operations === "string" ? r.data.operations : r.data.operations.join(",");
  let selection: Set<string>;
  try {
    selection = applySelection(ops);
  } catch (e) {
    throw new UsageError(`profile ${source}: ${(e as Error).message}`);
  }
  const parameters: Record<string, Record<string, unknown>> = {};
  for (const [opName, params] of Object.entries(r.data.parameters ?? {})) {
    const op = findOperation(opName);
    if (!op) throw new UsageError(`profile ${source}: parameters for unknown operation "${opName}"`);
    if (!op.parameters) throw new UsageError(`profile ${source}: operation "${opName}" takes no parameters`);
    const checked = op.parameters.safeParse(params);
    if (!checked.success)
      throw new UsageError(
        `profile ${source}: parameters of ${opName}: ${z.prettifyError(checked.error).replace(/\n/g, "; ")}`,
      );
    parameters[opName] = checked.data as Record<string, unknown>;
  }
  return { name, source, description: r.data.description ?? "", selection, parameters };
}

/** A built-in profile by name ("default", "atmosphere"), else a path to a YAML file. */
export async function loadProfile(nameOrPath: string): Promise<CleaningProfile> {
  if (/^[a-z0-9][a-z0-9-]*$/.test(nameOrPath)) {
    const builtIn = `${BUILT_IN_PROFILES_DIR}${nameOrPath}.yaml`;
    if (
      await stat(builtIn).then(
        (s) => s.isFile(),
        () => false,
      )
    )
      return parseProfile(await readFile(builtIn, "utf8"), builtIn, nameOrPath);
  }
  let text: string;
  try {
    const st = await stat(nameOrPath);
    if (!st.isFile() || st.size > 1 << 20) throw new Error("not a small regular file");
    text = await readFile(nameOrPath, "utf8");
  } catch (e) {
    throw new UsageError(
      `profile "${nameOrPath}" is neither a built-in profile (${(await listBuiltInProfiles()).join(", ")}) nor a readable YAML file (${(e as Error).message})`,
    );
  }
  return parseProfile(text, nameOrPath, nameOrPath);
}

export async function listBuiltInProfiles(): Promise<string[]> {
  return (await readdir(BUILT_IN_PROFILES_DIR).catch(() => [] as string[]))
    .filter((n) => n.endsWith(".yaml"))
    .map((n) => n.slice(0, -5))
    .sort();
}
