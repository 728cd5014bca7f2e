/**
 * Shared by the kube E2E tests: the `submit` arguments that run a JobSpec with the kube backend
 * against the test API server, with the podman test image as the worker image, and the images
 * those runs need.
 */
import {
  DENO_TEST_IMAGE,
  ensureDenoImage,
  ensureTestImage,
  TEST_WORKER_IMAGE,
} from "../_helpers/podman.ts";
import type { KubeApi } from "../_kube_sim/api_server.ts";

/**
 * `--backend kube --kubeconfig <test server> --image <test image> --relay-address <node IP>
 * --deno-image <test deno image>` (unless `args` choose `--worker-source image`) followed by
 * `args` (later flags win): the coordinator runs
 * outside the simulated cluster, whose pods reach this machine at the node address (never at
 * 127.0.0.1); stock-image workers copy deno from the stand-in for the public Deno image.
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
    // The image source refuses a Deno image (it would not be used).
    ...(args.join(" ").includes("--worker-source image") ? [] : ["--deno-image", DENO_TEST_IMAGE]),
    ...args,
  ];
}

/** Builds (when their inputs changed) the worker test image and the Deno stand-in image. */
export async function ensureKubeImages(signal?: AbortSignal): Promise<void> {
  await ensureTestImage({ signal });
  await ensureDenoImage(signal);
}
