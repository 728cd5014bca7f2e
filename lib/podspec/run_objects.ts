/**
 * Everything a kube run would create, for `submit --dry-run --backend kube -o yaml`: the
 * per-run Secret (values replaced by a placeholder) and one worker pod per stage (with its
 * volumes).
 *
 * @module
 */

import type { V1ConfigMap, V1Pod, V1Secret } from "@kubernetes/client-node";
import { BUNDLE_PART_BYTES, bundleConfigMaps, STOCK_BUNDLE_KEY } from "./stock_worker.ts";
import { runSecretName } from "./names.ts";
import { redactSecret, runSecret, workerPod, type WorkerPodOptions } from "./worker.ts";

/** Options of {@link dryRunObjects}. */
export interface DryRunOptions
  extends Omit<WorkerPodOptions, "stageId" | "stageIndex" | "env" | "secretFiles"> {
  /** Stages in JobSpec order, with each worker's non-secret env. */
  stages: { id: string; index: number; env: Record<string, string> }[];
  /** Names of the secret env vars (their values are never known here). */
  secretKeys: string[];
}

/**
 * The redacted per-run Secret, the worker-bundle ConfigMap (stock-image workers; its content
 * left out), then every worker pod, in creation order.
 */
export function dryRunObjects(opts: DryRunOptions): (V1Pod | V1Secret | V1ConfigMap)[] {
  const { stages, secretKeys, ...common } = opts;
  const secret = redactSecret(
    runSecret(opts.runId, Object.fromEntries(secretKeys.map((k) => [k, ""])), {
      namespace: opts.namespace,
    }),
  );
  const pods = stages.map((s) =>
    workerPod({
      ...common,
      stageId: s.id,
      stageIndex: s.index,
      env: s.env,
      secretFiles: { secretName: runSecretName(opts.runId), keys: secretKeys },
    })
  );
  const bundle = opts.stock
    ? bundleConfigMaps(
      opts.runId,
      // Only the count matters here: the content is left out of what a dry run prints.
      {
        gzip: new Uint8Array((opts.stock.parts ?? 1) * BUNDLE_PART_BYTES),
        sha256: opts.stock.sha256,
      },
      { namespace: opts.namespace },
    ).map((cm) => ({ ...cm, binaryData: { [STOCK_BUNDLE_KEY]: "" } }))
    : [];
  return [secret, ...bundle, ...pods];
}
