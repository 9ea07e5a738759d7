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

/** The selected operations in run order. */
export function orderedOperations(selected: ReadonlySet<string>): CleaningOperation[] {
  return CLEANING_OPERATIONS.filter((op) => selected.has(op.name));
}
