/**
 * A kernel's module dependencies from its modules.dep (the text file depmod writes into /lib/modules/VERSION:
 * one line per module, "kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko …"), and the order
 * to load a set of modules in, each after the modules it needs.
 */
import { moduleName } from "./boot-drivers.js";

export interface ModuleFile {
  /** The module's name with `_` for `-` ("virtio_pci_modern_dev"). */
  readonly name: string;
  /** Its path relative to /lib/modules/VERSION, as modules.dep gives it. */
  readonly path: string;
}

export type ModuleDeps = ReadonlyMap<string, { readonly path: string; readonly depends: readonly string[] }>;

/** More lines than this is not a modules.dep (a full Debian kernel has about 4,000). */
const MAX_LINES = 100_000;

export function parseModulesDep(text: string): ModuleDeps {
  const out = new Map<string, { path: string; depends: string[] }>();
  const lines = text.split("\n");
  if (lines.length > MAX_LINES) throw new Error(`modules.dep has more than ${MAX_LINES} lines`);
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const path = line.slice(0, colon).trim();
    const name = moduleName(path);
    if (!name) continue;
    const depends = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .map((p) => moduleName(p))
      .filter((n): n is string => n !== null);
    out.set(name, { path, depends });
  }
  return out;
}

/**
 * `wanted` and everything they need, dependencies first. Throws naming a module modules.dep does not list (built
 * in, or absent: either way not a file to load).
 */
export function loadOrder(deps: ModuleDeps, wanted: readonly string[]): ModuleFile[] {
  const order: ModuleFile[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (name: string, from: string | null) => {
    if (state.get(name) === "done") return;
    if (state.get(name) === "visiting") throw new Error(`modules.dep: ${name} depends on itself`);
    const dep = deps.get(name);
    if (!dep) throw new Error(`modules.dep lists no module ${name}${from ? ` (needed by ${from})` : ""}`);
    state.set(name, "visiting");
    for (const d of dep.depends) visit(d, name);
    state.set(name, "done");
    order.push({ name, path: dep.path });
  };
  for (const name of wanted) visit(name, null);
  return order;
}
