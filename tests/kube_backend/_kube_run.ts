/**
 * Shared by the kube E2E tests: the `submit` arguments that run a JobSpec with the kube backend
 * against the test API server, with the podman test image as the worker image.
 */
import { TEST_WORKER_IMAGE } from "../_helpers/podman.ts";
import type { KubeApi } from "../_kube_sim/api_server.ts";

/**
 * `--backend kube --kubeconfig <test server> --image <test image> --relay-address <node IP>`
 * followed by `args`: the coordinator runs outside the simulated cluster, whose pods reach this
 * machine at the node address (never at 127.0.0.1).
 */
export function kubeSubmitArgs(kube: KubeApi, ...args: string[]): string[] {
  return [
    "--backend",
    "kube",
    "--kubeconfig",
    kube.kubeconfigPath,
    "--image",
    TEST_WORKER_IMAGE,
    "--relay-address",
    kube.nodeIP,
    ...args,
  ];
}
