/**
 * The admin DescribeServices call of the Empyrean (bootstrap) service: the cloud's services, each with its
 * type, availability zone ("partition"), host and state. The request and reply are Eucalyptus 4.4's
 * `DescribeServicesType` / `DescribeServicesResponseType`, `ServiceStatusType` and `ServiceId` (eucalyptus
 * clc/modules/msgs/src/main/java/com/eucalyptus/empyrean/EmpyreanMessages.groovy); the parameters are those the
 * 4.4 admin tool `euca-describe-services` sends (admin-tools/eucalyptus_admin/commands/bootstrap/
 * describeservices.py: `ListAll`, `ServiceName.N`, `Filter.N.Name` / `Filter.N.Value.M`, with the filter names
 * `service-type`, `host`, `partition`, `state`).
 */
import { queryCall, type EucalyptusCredentials, type QueryCallOptions } from "./query-client.js";
import { itemsOf, stringItemsOf, textOf } from "./query-reply.js";
import type { EucalyptusAdminEndpoints } from "./admin-services.js";

export interface EucalyptusService {
  /** The registration's name; for a node controller, the name `euca:node` tags refer to (its address). */
  readonly name: string;
  /** The component type: "cluster", "node", "storage", "eucalyptus", "walrusbackend", … */
  readonly type: string;
  /** The availability zone ("partition") it serves, when it has one. */
  readonly partition: string | undefined;
  readonly fullName: string | undefined;
  /** The host it runs on: `host`, else the host of its first URI. */
  readonly host: string | undefined;
  readonly uris: readonly string[];
  /** ENABLED, DISABLED, NOTREADY, BROKEN, STOPPED … as the cloud reports it. */
  readonly state: string | undefined;
}

export interface DescribeServicesRequest {
  /** Every service regardless of type (`ListAll`), as euca-describe-services -a; true by default. */
  readonly listAll?: boolean;
  /** Only services of this type (filter `service-type`), e.g. "node" or "cluster". */
  readonly serviceType?: string;
  /** Only these registrations (`ServiceName.N`). */
  readonly names?: readonly string[];
}

function hostOfUri(uri: string | undefined): string | undefined {
  if (!uri) return undefined;
  try {
    return new URL(uri).hostname || undefined;
  } catch {
    return undefined;
  }
}

/** Lists the cloud's services (admin credentials required). */
export async function describeServices(
  endpoints: EucalyptusAdminEndpoints,
  credentials: EucalyptusCredentials,
  request: DescribeServicesRequest = {},
  options: QueryCallOptions = {},
): Promise<EucalyptusService[]> {
  const params: Record<string, string> = {};
  if (request.listAll ?? true) params["ListAll"] = "true";
  request.names?.forEach((name, i) => (params[`ServiceName.${i + 1}`] = name));
  if (request.serviceType !== undefined) {
    params["Filter.1.Name"] = "service-type";
    params["Filter.1.Value.1"] = request.serviceType;
  }
  const reply = await queryCall(endpoints.bootstrap, credentials, "DescribeServices", params, options);
  return itemsOf(reply, "serviceStatuses").map((status) => {
    const id = status["serviceId"] ?? {};
    const uris = stringItemsOf(id, "uris");
    const uri = textOf(id, "uri") ?? uris[0];
    return {
      name: textOf(id, "name") ?? "",
      type: textOf(id, "type") ?? "",
      partition: textOf(id, "partition"),
      fullName: textOf(id, "fullName"),
      // 4.4 sends `host`; 3.x's eucadmin read `hostName`.
      host: textOf(id, "host") ?? textOf(id, "hostName") ?? hostOfUri(uri),
      uris: uris.length ? uris : uri ? [uri] : [],
      state: textOf(status, "localState"),
    };
  });
}
