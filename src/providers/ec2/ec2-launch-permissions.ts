/**
 * Who may launch an image: account ids, and the group "all" (public). Read with DescribeImageAttribute and
 * changed with ModifyImageAttribute. OpenStack's ec2-api implements only the group "all" (as Glance visibility);
 * Eucalyptus and AWS both.
 */
import {
  DescribeImageAttributeCommand,
  ModifyImageAttributeCommand,
  type DescribeImageAttributeCommandOutput,
  type LaunchPermission,
} from "@aws-sdk/client-ec2";
import type { Ec2Connection } from "./ec2-connection.js";

export interface LaunchPermissions {
  readonly userIds: readonly string[];
  /** The group "all": anyone may launch it. */
  readonly all: boolean;
}

export async function getLaunchPermissions(
  ec2: Ec2Connection,
  imageId: string,
  signal?: AbortSignal,
): Promise<LaunchPermissions> {
  const out = await ec2.send<DescribeImageAttributeCommandOutput>(
    new DescribeImageAttributeCommand({ ImageId: imageId, Attribute: "launchPermission" }),
    { call: "DescribeImageAttribute launchPermission", subject: imageId },
    signal,
  );
  const permissions = out.LaunchPermissions ?? [];
  return {
    userIds: permissions.map((p) => p.UserId).filter((u): u is string => !!u),
    all: permissions.some((p) => p.Group === "all"),
  };
}

/** Grants (`add`) and withdraws (`remove`) launch permissions in one call. */
export async function modifyLaunchPermissions(
  ec2: Ec2Connection,
  imageId: string,
  change: { readonly add?: Partial<LaunchPermissions>; readonly remove?: Partial<LaunchPermissions> },
  signal?: AbortSignal,
): Promise<void> {
  const list = (p: Partial<LaunchPermissions> | undefined): LaunchPermission[] => [
    ...(p?.userIds ?? []).map((UserId) => ({ UserId })),
    ...(p?.all ? [{ Group: "all" as const }] : []),
  ];
  const add = list(change.add);
  const remove = list(change.remove);
  if (add.length === 0 && remove.length === 0) return;
  await ec2.send(
    new ModifyImageAttributeCommand({
      ImageId: imageId,
      LaunchPermission: { ...(add.length ? { Add: add } : {}), ...(remove.length ? { Remove: remove } : {}) },
    }),
    { call: "ModifyImageAttribute launchPermission", subject: imageId },
    signal,
  );
}
