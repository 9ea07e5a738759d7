/**
 * What only Eucalyptus has, for the workflows: finding an instance's node controller (admin Query calls),
 * bundling an instance-store instance on the cloud (BundleInstance and its task), and copying an instance's
 * root disk off its node controller over SFTP.
 */
export { eucalyptusAdminEndpoints, type EucalyptusAdminEndpoints } from "./admin-services.js";
export { EucalyptusError } from "./eucalyptus-error.js";
export { queryCall, type EucalyptusCredentials, type QueryCallOptions, type QueryService } from "./query-client.js";
export { describeServices, type EucalyptusService, type DescribeServicesRequest } from "./describe-services.js";
export { describeNodes, type RegisteredNode } from "./describe-nodes.js";
export { describeAllInstances, type AdminInstanceView } from "./verbose-instances.js";
export { findInstanceNode, type InstanceNode } from "./instance-node.js";
export {
  bundleInstance,
  bundleUploadPolicy,
  cancelBundleTask,
  describeBundleTask,
  eucalyptusEc2Client,
  waitForBundleTask,
  type BundleInstanceRequest,
  type BundleTaskStatus,
  type BundleWaitOptions,
} from "./bundle-instance.js";
export { hostKeyVerifier, sshFingerprint, type HostKeyPolicy } from "./host-key-check.js";
export {
  DEFAULT_ROOT_FILE_NAMES,
  EUCALYPTUS_4_INSTANCES_DIR,
  LEGACY_INSTANCES_DIR,
  type NodeInstanceLayout,
} from "./node-instance-path.js";
export { copyInstanceDiskFromNode, type NodeDiskCopyOptions, type NodeDiskCopyResult } from "./node-disk-copy.js";
