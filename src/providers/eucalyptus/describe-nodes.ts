/**
 * The Configuration service's DescribeNodes: each node controller with its cluster and the instances it runs.
 * This is the call the original chromogenic made (`get_list("DescribeNodes", …, [('euca:item', …)])` on
 * `/services/Configuration`). Its reply is `DescribeNodesResponseType { registered: [NodeComponentInfoType
 * { name, clusterName, instances[] }] }` (eucalyptus clc/modules/cluster-manager/.../node/
 * NodeControllerConfigurationMessages.groovy and clc/modules/configuration/.../ConfigurationMessages.groovy).
 * Eucalyptus 3.1 answers it (Configuration.java `listComponents(DescribeNodesType)`); from 3.4 on no handler
 * is left and the admin tools find nodes with DescribeServices and verbose DescribeInstances instead
 * (instance-node.ts), so this is the fallback for older clouds.
 */
import { queryCall, type EucalyptusCredentials, type QueryCallOptions } from "./query-client.js";
import { itemsOf, stringItemsOf, textOf } from "./query-reply.js";
import type { EucalyptusAdminEndpoints } from "./admin-services.js";

export interface RegisteredNode {
  /** The node controller's name, its address. */
  readonly name: string;
  readonly clusterName: string | undefined;
  /** Ids of the instances it runs. */
  readonly instances: readonly string[];
}

export async function describeNodes(
  endpoints: EucalyptusAdminEndpoints,
  credentials: EucalyptusCredentials,
  options: QueryCallOptions = {},
): Promise<RegisteredNode[]> {
  const reply = await queryCall(endpoints.configuration, credentials, "DescribeNodes", {}, options);
  return itemsOf(reply, "registered").map((node) => ({
    name: textOf(node, "name") ?? "",
    clusterName: textOf(node, "clusterName"),
    instances: stringItemsOf(node, "instances"),
  }));
}
