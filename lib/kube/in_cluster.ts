/**
 * Whether this process runs in a Kubernetes pod with a service account. Kept apart from the
 * API client so callers can ask without loading it.
 *
 * @module
 */
import { existsSync } from "node:fs";

/** Where a pod's service account is mounted. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/**
 * True when this process runs in a pod with a service account: `KUBERNETES_SERVICE_HOST` is
 * set and the token file exists.
 */
export function runningInCluster(
  env: Readonly<Record<string, string | undefined>>,
  exists: (p: string) => boolean = existsSync,
): boolean {
  return !!env.KUBERNETES_SERVICE_HOST && exists(`${SERVICE_ACCOUNT_DIR}/token`);
}
