/**
 * How the S3 and EC2 clients connect: the SDK's Node handler with our own agents, so that the TLS trust a
 * cloud asks for (a CA file, or no checking at all on the user's word) and the timeouts are the same for every
 * call. The CA file replaces Node's bundled CAs, as OS_CACERT does for an OpenStack cloud; `verify: false`
 * checks nothing and warns once per cloud.
 */
import { readFileSync } from "node:fs";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { ChromogenicError } from "../../util/errors.js";

export interface Ec2TlsSettings {
  /** A PEM file of the CAs trusted instead of Node's bundled ones, and where it was named (for messages). */
  readonly caFile?: { readonly path: string; readonly from: string };
  /** False: certificates are not checked (OS_INSECURE / --insecure, `verify-ssl = false`). */
  readonly verify: boolean;
}

/** A TCP and TLS handshake that takes longer than this will not complete. */
const CONNECT_TIMEOUT_MS = 30_000;
/** No byte moving for this long ends a request (the SDK's socket timeout). */
const IDLE_TIMEOUT_MS = 300_000;
/** Parts in flight plus a few calls beside them. */
const MAX_SOCKETS = 16;

/** The SDK's `requestHandler` options (NodeHttpHandler's), built once per client. */
export interface AwsRequestHandlerOptions {
  readonly httpAgent: HttpAgent;
  readonly httpsAgent: HttpsAgent;
  readonly connectionTimeout: number;
  readonly requestTimeout: number;
}

const warnedInsecure = new Set<string>();

export function requestHandlerOptions(cloud: string, tls: Ec2TlsSettings): AwsRequestHandlerOptions {
  let ca: string | undefined;
  if (tls.caFile) {
    try {
      ca = readFileSync(tls.caFile.path, "utf8");
    } catch (e) {
      throw new ChromogenicError(
        `cloud "${cloud}": the CA file ${tls.caFile.path} (${tls.caFile.from}) cannot be read: ${(e as Error).message}`,
        "ECONFIG",
      );
    }
    if (!ca.includes("-----BEGIN ")) {
      throw new ChromogenicError(
        `cloud "${cloud}": the CA file ${tls.caFile.path} (${tls.caFile.from}) is not PEM (no "-----BEGIN" line)`,
        "ECONFIG",
      );
    }
  }
  if (!tls.verify && !warnedInsecure.has(cloud)) {
    warnedInsecure.add(cloud);
    process.emitWarning(
      `cloud "${cloud}": TLS certificates are not checked (OS_INSECURE, --insecure or verify-ssl = false); ` +
        "anyone on the path can read and change what is sent",
    );
  }
  return {
    httpAgent: new HttpAgent({ keepAlive: true, maxSockets: MAX_SOCKETS }),
    httpsAgent: new HttpsAgent({
      keepAlive: true,
      maxSockets: MAX_SOCKETS,
      rejectUnauthorized: tls.verify,
      ...(ca ? { ca } : {}),
    }),
    connectionTimeout: CONNECT_TIMEOUT_MS,
    requestTimeout: IDLE_TIMEOUT_MS,
  };
}
