/**
 * Where a Eucalyptus 4.4 cloud answers the calls of this folder, and how each is signed. The paths are the
 * services' `getServicePath` in the Eucalyptus source (clc/modules/msgs/.../empyrean/Empyrean.java:
 * "/services/Empyrean"; ComponentId.getServicePath: "/services/" + the component's name, so
 * "/services/Configuration"), and euca2ools 3.4's conf/conf.d/localhost.ini ("bootstrap-url =
 * …/services/Empyrean/", "ec2-url = …/services/compute/"). The signing names are the services' names in
 * requestbuilder's credential scope (euca2ools' `Bootstrap.NAME = 'bootstrap'`, `EC2.NAME = 'ec2'`); the
 * API versions are those the 4.4 admin tools send (admin-tools/eucalyptus_admin/commands/bootstrap and ec2).
 */
import type { QueryService } from "./query-client.js";

export interface EucalyptusAdminEndpoints {
  /** The Empyrean ("bootstrap") service: DescribeServices. */
  readonly bootstrap: QueryService;
  /** The compute (EC2) service: verbose DescribeInstances, BundleInstance, DescribeBundleTasks. */
  readonly compute: QueryService;
  /** The Configuration service: DescribeNodes on Eucalyptus 3.x clouds. */
  readonly configuration: QueryService;
}

/** The endpoints of a cloud controller at `base` (e.g. "http://clc.example:8773"), or given one by one. */
export function eucalyptusAdminEndpoints(
  base: string,
  urls: { bootstrapUrl?: string; computeUrl?: string; configurationUrl?: string } = {},
): EucalyptusAdminEndpoints {
  const root = base.replace(/\/+$/, "");
  return {
    bootstrap: {
      url: urls.bootstrapUrl ?? `${root}/services/Empyrean`,
      signingName: "bootstrap",
      label: "bootstrap (Empyrean)",
      apiVersion: "eucalyptus",
    },
    compute: {
      url: urls.computeUrl ?? `${root}/services/compute`,
      signingName: "ec2",
      label: "compute",
      apiVersion: "2014-10-01",
    },
    configuration: {
      url: urls.configurationUrl ?? `${root}/services/Configuration`,
      signingName: "configuration",
      label: "configuration",
      apiVersion: "eucalyptus",
    },
  };
}
