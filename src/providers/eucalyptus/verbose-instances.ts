/**
 * The compute service's DescribeInstances asked with the pseudo-id `verbose`: as an administrator, every
 * account's instances instead of the caller's own (Eucalyptus 4.4 ComputeService.describeInstances: `showAll =
 * instancesSet.remove("verbose") || …`, owner filter dropped for an administrator), each tagged `euca:node`
 * with the node controller it runs on (VmInstance.VM_NC_HOST_TAG). The request is what the 4.4 admin tool
 * euca-describe-node-controllers sends (`InstanceId=['verbose']`, admin-tools/eucalyptus_admin/commands/
 * bootstrap/describenodecontrollers.py); the reply is EC2's DescribeInstancesResponse (reservationSet →
 * instancesSet → tagSet, euca2ools 3.4 euca2ools/commands/ec2/describeinstances.py LIST_TAGS).
 */
import { queryCall, type EucalyptusCredentials, type QueryCallOptions } from "./query-client.js";
import { itemsOf, textOf } from "./query-reply.js";
import type { EucalyptusAdminEndpoints } from "./admin-services.js";

export interface AdminInstanceView {
  readonly instanceId: string;
  readonly reservationId: string | undefined;
  /** The owning account's number (the reservation's `ownerId`). */
  readonly account: string;
  readonly imageId: string | undefined;
  readonly kernelId: string | undefined;
  readonly ramdiskId: string | undefined;
  /** "instance-store" or "ebs". */
  readonly rootDeviceType: string | undefined;
  /** pending, running, stopped, terminated … */
  readonly state: string | undefined;
  readonly availabilityZone: string | undefined;
  /** The node controller, from the `euca:node` tag; undefined when the cloud did not tag it. */
  readonly node: string | undefined;
  readonly tags: Readonly<Record<string, string>>;
}

/** The pseudo-id that makes an administrator's DescribeInstances cover every account. */
export const VERBOSE = "verbose";
/** The tag Eucalyptus puts on an instance naming its node controller. */
export const NODE_TAG = "euca:node";

/** Every account's instances (admin credentials), or only `instanceIds` among them. */
export async function describeAllInstances(
  endpoints: EucalyptusAdminEndpoints,
  credentials: EucalyptusCredentials,
  instanceIds: readonly string[] = [],
  options: QueryCallOptions = {},
): Promise<AdminInstanceView[]> {
  const params: Record<string, string> = { "InstanceId.1": VERBOSE };
  instanceIds.forEach((id, i) => (params[`InstanceId.${i + 2}`] = id));
  const reply = await queryCall(endpoints.compute, credentials, "DescribeInstances", params, options);
  const instances: AdminInstanceView[] = [];
  for (const reservation of itemsOf(reply, "reservationSet")) {
    const account = textOf(reservation, "ownerId") ?? "";
    for (const instance of itemsOf(reservation, "instancesSet")) {
      const tags: Record<string, string> = {};
      for (const tag of itemsOf(instance, "tagSet")) {
        const key = textOf(tag, "key");
        if (key !== undefined) tags[key] = textOf(tag, "value") ?? "";
      }
      instances.push({
        instanceId: textOf(instance, "instanceId") ?? "",
        reservationId: textOf(reservation, "reservationId"),
        account,
        imageId: textOf(instance, "imageId"),
        kernelId: textOf(instance, "kernelId"),
        ramdiskId: textOf(instance, "ramdiskId"),
        rootDeviceType: textOf(instance, "rootDeviceType"),
        state: textOf(instance["instanceState"], "name"),
        availabilityZone: textOf(instance["placement"], "availabilityZone"),
        node: tags[NODE_TAG] || undefined,
        tags,
      });
    }
  }
  return instances;
}
