/**
 * Kubernetes API access over npm:@kubernetes/client-node: kubeconfig / in-cluster
 * configuration, the CoreV1 calls gangplank needs with bounded retries (429/5xx with backoff
 * honouring `Retry-After`), a resumable pod watch, line-oriented log streaming, running a pod
 * to completion with the cluster's own failure reasons, and hop mode.
 *
 * @example
 * ```ts
 * import { KubeClient } from "./mod.ts";
 * const client = KubeClient.connect({ target: { kind: "kubeconfig", path: "kubeconfig" } });
 * const pods = await client.listPods("app=x", { signal: AbortSignal.timeout(10_000) });
 * ```
 *
 * @module
 */
export * from "./retry.ts";
export * from "./client.ts";
export * from "./verdict.ts";
export * from "./run_pod.ts";
export * from "./hop.ts";
