/**
 * Which node controller runs an instance, and whose instance it is: what imaging an instance-store instance
 * by copying its disk off the node needs. Done as Eucalyptus 4.4's euca-describe-node-controllers does it
 * (admin-tools/eucalyptus_admin/commands/bootstrap/describenodecontrollers.py): the instance's `euca:node` tag
 * from a verbose DescribeInstances names the node, and DescribeServices' node services give its host. A cloud
 * too old to tag instances (3.1) is asked DescribeNodes instead, the original chromogenic's call.
 */
import { ChromogenicError } from "../../util/errors.js";
import type { EucalyptusAdminEndpoints } from "./admin-services.js";
import { describeNodes } from "./describe-nodes.js";
import { describeServices } from "./describe-services.js";
import type { EucalyptusCredentials, QueryCallOptions } from "./query-client.js";
import { describeAllInstances } from "./verbose-instances.js";

export interface InstanceNode {
  readonly instanceId: string;
  /** The node controller's host (address or name) to reach it over SSH. */
  readonly nodeHost: string;
  /** The account that owns the instance: its directory on the node is named after it. */
  readonly account: string;
  /** "instance-store" or "ebs": only an instance-store root disk lives as a file on the node. */
  readonly rootDeviceType: string | undefined;
  readonly state: string | undefined;
  readonly availabilityZone: string | undefined;
  readonly imageId: string | undefined;
  readonly kernelId: string | undefined;
  readonly ramdiskId: string | undefined;
  /** How the node was found: the `euca:node` tag (4.x) or DescribeNodes (3.x). */
  readonly foundBy: "euca:node tag" | "DescribeNodes";
}

/** Finds the node controller running `instanceId` (admin credentials). */
export async function findInstanceNode(
  endpoints: EucalyptusAdminEndpoints,
  credentials: EucalyptusCredentials,
  instanceId: string,
  options: QueryCallOptions = {},
): Promise<InstanceNode> {
  const instance = (await describeAllInstances(endpoints, credentials, [instanceId], options)).find(
    (i) => i.instanceId === instanceId,
  );
  if (!instance) {
    throw new ChromogenicError(
      `Eucalyptus has no instance ${instanceId} (asked as administrator, all accounts)`,
      "ENOENT",
    );
  }
  const found = {
    instanceId,
    account: instance.account,
    rootDeviceType: instance.rootDeviceType,
    state: instance.state,
    availabilityZone: instance.availabilityZone,
    imageId: instance.imageId,
    kernelId: instance.kernelId,
    ramdiskId: instance.ramdiskId,
  };
  if (instance.node !== undefined) {
    const nodes = await describeServices(endpoints, credentials, { serviceType: "node" }, options);
    const node = nodes.find((n) => n.type === "node" && n.name === instance.node);
    return { ...found, nodeHost: node?.host ?? instance.node, foundBy: "euca:node tag" };
  }
  let registered;
  try {
    registered = await describeNodes(endpoints, credentials, options);
  } catch (error) {
    throw new ChromogenicError(
      `Eucalyptus instance ${instanceId} (${instance.state ?? "state unknown"}) has no euca:node tag, and ` +
        `DescribeNodes could not be asked instead: ${(error as Error).message}`,
      "ECLOUD",
      { cause: error },
    );
  }
  const node = registered.find((n) => n.instances.includes(instanceId));
  if (!node) {
    throw new ChromogenicError(
      `no Eucalyptus node controller runs instance ${instanceId} (${instance.state ?? "state unknown"}): ` +
        "it is not running on any node",
      "ENOENT",
    );
  }
  return { ...found, nodeHost: node.name, foundBy: "DescribeNodes" };
}
