import { UsageError } from "../../formats/errors.js";
import type { CleaningOperation } from "./cleaning-operation.js";
import { CLEANING_OPERATIONS, findOperation } from "./operation-registry.js";

/**
 * virt-sysprep's `--operations` grammar: a comma-separated list applied left to right to a starting set;
 * `defaults` adds the operations on by default, `all` adds every one, a name adds it, and a leading `-`
 * removes instead (`defaults,-ssh-hostkeys,user-account`). Unknown names are a usage error naming them.
 */
export function applySelection(text: string, start: ReadonlySet<string> = new Set()): Set<string> {
  const selected = new Set(start);
  const unknown: string[] = [];
  const tokens = text.split(",").map((t) => t.trim());
  if (tokens.every((t) => t === "")) throw new UsageError("empty operation list");
  for (const token of tokens) {
    if (token === "") continue;
    const remove = token.startsWith("-");
    const name = remove ? token.slice(1) : token;
    let names: string[];
    if (name === "defaults") names = CLEANING_OPERATIONS.filter((op) => op.defaultEnabled).map((op) => op.name);
    else if (name === "all") names = CLEANING_OPERATIONS.map((op) => op.name);
    else if (findOperation(name)) names = [name];
    else {
      unknown.push(name);
      continue;
    }
    for (const n of names) {
      if (remove) selected.delete(n);
      else selected.add(n);
    }
  }
  if (unknown.length)
    throw new UsageError(
      `unknown cleaning operation${unknown.length > 1 ? "s" : ""} ${unknown.map((u) => `"${u}"`).join(", ")} (see clean --list-operations)`,
    );
  return selected;
}

/**
 * virt-sysprep's `--enable`: a comma-separated list of operation names, exactly the set to run (no
 * `defaults`, `all` or `-name`); an empty list or an unknown name is a usage error.
 */
export function exactSelection(text: string): Set<string> {
  const names = text.split(",").map((t) => t.trim());
  if (names.every((n) => n === "")) throw new UsageError("--enable needs a list of operations");
  const unknown = names.filter((n) => n !== "" && !findOperation(n));
  if (unknown.length)
    throw new UsageError(
      `--enable: ${unknown.map((u) => `"${u}"`).join(", ")} ${unknown.length > 1 ? "are not known operations" : "is not a known operation"} (see clean --list-operations)`,
    );
  return new Set(names.filter((n) => n !== ""));
}

/** The selected operations in run order. */
export function orderedOperations(selected: ReadonlySet<string>): CleaningOperation[] {
  return CLEANING_OPERATIONS.filter((op) => selected.has(op.name));
}
