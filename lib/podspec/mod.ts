/**
 * Pod specs for the Kubernetes/OpenShift backend, as pure functions returning fresh objects:
 * the worker pod (reference §7.1), the per-run Secret holding the relay secret key, the hop
 * pod (§7.2) and its JobSpec Secret, the names and labels of everything a run creates, and the
 * object list `submit --dry-run --backend kube -o yaml` prints.
 *
 * @example
 * ```ts
 * import { runSecret, runSecretName, workerPod } from "./mod.ts";
 * const secret = runSecret(runId, { COSA_RELAY_SECRET_KEY: key });
 * const pod = workerPod({ runId, stageId: "build", stageIndex: 0, image, env: {},
 *   secretFiles: { secretName: runSecretName(runId), keys: ["COSA_RELAY_SECRET_KEY"] },
 *   timeoutSeconds: 5400 });
 * ```
 *
 * @module
 */
export * from "./names.ts";
export * from "./worker.ts";
export * from "./stock_worker.ts";
export * from "./hop.ts";
export * from "./run_objects.ts";
