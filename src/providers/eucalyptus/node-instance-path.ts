/**
 * Where an instance's root disk lives on its node controller. Eucalyptus 4.4's node controller keeps each
 * instance in `<instances path>/work/<owner>/<instance id>/` (storage/backing.c set_path: "%s/work/%s/%s"),
 * with INSTANCE_PATH usually /var/lib/eucalyptus/instances; the original chromogenic read
 * `/usr/local/eucalyptus/<owner>/<instance>/root` from the Xen-era layout. The base directory and the file
 * names tried are options; the owner and the instance id become path components only after checking they
 * cannot climb out of it.
 */
import { posix } from "node:path";
import { UsageError } from "../../util/errors.js";

/** Eucalyptus 4.4's instance work directory on a node controller. */
export const EUCALYPTUS_4_INSTANCES_DIR = "/var/lib/eucalyptus/instances/work";
/** The Xen-era layout the original chromogenic copied from. */
export const LEGACY_INSTANCES_DIR = "/usr/local/eucalyptus";
/** Names tried for the root disk file in an instance's directory, in order. */
export const DEFAULT_ROOT_FILE_NAMES: readonly string[] = ["disk", "root"];

/** An account number or user id: letters, digits, '_', '-', '.', never "." or ".." alone. */
const OWNER = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
/** An instance id as Eucalyptus and EC2 make them. */
const INSTANCE_ID = /^i-[0-9a-fA-F]{8,17}$/;
/** A plain file name: no separator, not a dot-name. */
const FILE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$/;

export interface NodeInstanceLayout {
  /** Absolute directory holding `<owner>/<instance>/` on the node; Eucalyptus 4.4's by default. */
  readonly instancesDir?: string;
  /** File names tried for the root disk; DEFAULT_ROOT_FILE_NAMES by default. */
  readonly rootFileNames?: readonly string[];
}

export interface NodeInstancePaths {
  readonly instancesDir: string;
  readonly instanceDir: string;
  readonly candidates: readonly string[];
}

/** The node paths for `owner`'s `instanceId`, refusing any component that could leave the base directory. */
export function nodeInstancePaths(
  owner: string,
  instanceId: string,
  layout: NodeInstanceLayout = {},
): NodeInstancePaths {
  const instancesDir = posix.normalize(layout.instancesDir ?? EUCALYPTUS_4_INSTANCES_DIR).replace(/\/+$/, "");
  if (!posix.isAbsolute(instancesDir) || instancesDir.split("/").includes("..")) {
    throw new UsageError(`node instances directory "${layout.instancesDir}" must be an absolute path without ".."`);
  }
  if (!OWNER.test(owner) || owner.includes("..")) {
    throw new UsageError(`instance owner "${owner}" is not an account or user id; refusing it in a path`);
  }
  if (!INSTANCE_ID.test(instanceId)) throw new UsageError(`"${instanceId}" is not an instance id (i-…)`);
  const names = layout.rootFileNames ?? DEFAULT_ROOT_FILE_NAMES;
  for (const name of names) {
    if (!FILE_NAME.test(name) || name.includes("..")) {
      throw new UsageError(`root disk file name "${name}" must be a plain file name`);
    }
  }
  const instanceDir = posix.join(instancesDir || "/", owner, instanceId);
  return { instancesDir: instancesDir || "/", instanceDir, candidates: names.map((n) => posix.join(instanceDir, n)) };
}

/** Whether `path` is `dir` itself or inside it (both absolute and normalized, as realpath returns them). */
export function isWithin(dir: string, path: string): boolean {
  return path === dir || path.startsWith(dir === "/" ? "/" : `${dir}/`);
}
