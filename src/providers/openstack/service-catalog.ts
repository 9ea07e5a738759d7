/**
 * Endpoint selection from a Keystone v3 service catalog: by service type, region and interface, the way
 * keystoneauth does it. A missing service or region is an error that lists what the catalog does offer.
 */
import { EndpointNotFoundError } from "./errors.js";

export interface CatalogEndpoint {
  readonly interface: string;
  readonly region_id?: string | null;
  readonly region?: string | null;
  readonly url: string;
}

export interface CatalogService {
  readonly type: string;
  readonly name?: string;
  readonly endpoints: readonly CatalogEndpoint[];
}

export interface EndpointQuery {
  readonly cloud: string;
  readonly serviceType: string;
  readonly interface: string;
  /** Without a region, the service must be offered in exactly one region. */
  readonly region?: string;
}

export function selectEndpoint(catalog: readonly CatalogService[], q: EndpointQuery): string {
  const call = `catalog lookup of "${q.serviceType}"`;
  const services = catalog.filter((s) => s.type === q.serviceType);
  if (services.length === 0) {
    const offered = [...new Set(catalog.map((s) => s.type))].sort().join(", ") || "nothing";
    throw new EndpointNotFoundError(
      { cloud: q.cloud, call },
      `the service catalog has no "${q.serviceType}" service (it offers: ${offered})`,
    );
  }
  const endpoints = services.flatMap((s) => s.endpoints).filter((e) => e.interface === q.interface);
  const regionOf = (e: CatalogEndpoint) => e.region_id ?? e.region ?? "";
  const regions = [...new Set(endpoints.map(regionOf))].sort();
  if (endpoints.length === 0) {
    throw new EndpointNotFoundError({ cloud: q.cloud, call }, `"${q.serviceType}" has no ${q.interface} endpoint`);
  }
  let chosen: CatalogEndpoint | undefined;
  if (q.region) {
    chosen = endpoints.find((e) => regionOf(e) === q.region);
    if (!chosen) {
      throw new EndpointNotFoundError(
        { cloud: q.cloud, call },
        `"${q.serviceType}" has no ${q.interface} endpoint in region "${q.region}" (regions: ${regions.join(", ")})`,
      );
    }
  } else if (regions.length > 1) {
    throw new EndpointNotFoundError(
      { cloud: q.cloud, call },
      `"${q.serviceType}" is offered in several regions (${regions.join(", ")}): set region_name or OS_REGION_NAME`,
    );
  } else {
    chosen = endpoints[0];
  }
  return chosen!.url.replace(/\/+$/, "");
}
