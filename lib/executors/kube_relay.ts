/**
 * Where Kubernetes worker pods reach the relay. A pod's loopback is its own, so a coordinator
 * outside the cluster must name an address the pods can reach (`--relay-address`), hop into
 * the cluster, or use an external S3; this is decided before anything is created. Pure and
 * light (no Kubernetes client), so the command line can check it early.
 *
 * @module
 */

import { isIP } from "node:net";
import { UsageError } from "../errors/mod.ts";

/** The three ways a run from outside the cluster gives workers a relay they can reach. */
export const RELAY_WAYS_OUT = "give --relay-address HOST[:PORT] (an address of this machine " +
  "the pods can reach), hop into the cluster with --remote-kubeconfig, or use an external S3 " +
  "with -m/--minio-config";

/** Whether `host` is a loopback name or address (127/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h.endsWith(".localhost") || /^127\./.test(h) || h === "::1" ||
    /^::ffff:127\./.test(h);
}

/** Where worker pods reach the relay, and where the embedded relay listens. */
export interface KubeRelayPlan {
  /** What workers are told, for messages and `--dry-run` (`<pod IP>:<port>` in a cluster). */
  advertised: string;
  /** Listen address of the embedded relay (undefined with `-m`). */
  listenHost?: string;
  listenPort?: number;
}

/**
 * Decides how worker pods reach the relay before anything is created: in a cluster, this
 * pod's IP; outside, `--relay-address` (the relay listens on that address when it is an IP
 * literal, else on all addresses) or the external S3 of `-m`. Throws {@link UsageError} naming
 * the three ways out when none applies, or when the address is a loopback one.
 */
export function kubeRelayPlan(
  opts: { relayAddress?: { host: string; port?: number }; minioConfig?: string },
  inCluster: boolean,
): KubeRelayPlan {
  const ra = opts.relayAddress;
  if (ra) {
    if (isLoopback(ra.host)) {
      throw new UsageError(
        `--relay-address ${ra.host}: a loopback address; worker pods have their own loopback ` +
          `and cannot reach this machine's; give an address of this machine the pods can reach`,
      );
    }
    const ipLiteral = isIP(ra.host.replace(/^\[|\]$/g, "")) !== 0;
    return {
      advertised: `${ra.host}:${ra.port ?? "<relay port>"}`,
      listenHost: ipLiteral ? ra.host.replace(/^\[|\]$/g, "") : "0.0.0.0",
      ...(ra.port !== undefined ? { listenPort: ra.port } : {}),
    };
  }
  if (opts.minioConfig) return { advertised: `the S3 endpoint of ${opts.minioConfig}` };
  if (inCluster) return { advertised: "<this pod's IP>:<relay port>", listenHost: "0.0.0.0" };
  throw new UsageError(
    `--backend kube from outside the cluster: worker pods cannot reach this machine's ` +
      `loopback relay; ${RELAY_WAYS_OUT}`,
  );
}
