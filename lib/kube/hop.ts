/**
 * Hop mode (`--remote-kubeconfig`): run the coordinator itself in a pod of another cluster,
 * stream its log, and end with its exit code (Gangplank's hop turned failures into exit 0).
 * The JobSpec travels in a per-run Secret mounted into the pod; both are deleted at the end.
 *
 * @module
 */

import { hopPod, type HopPodOptions, hopSecret } from "../podspec/mod.ts";
import { type KubeOps, type PodOutcome, runPod } from "./run_pod.ts";

/** Options of {@link runHop}. */
export interface RunHopOptions extends Omit<HopPodOptions, "namespace"> {
  /** The JobSpec text (YAML) the coordinator in the pod runs. */
  jobspecYaml: string;
  /** Token guarding the pod's results (lib/kube/hop_results). */
  resultsToken?: string;
  /** Receives the coordinator's log lines. */
  onLine: (line: string) => void;
  log?: (msg: string) => void;
  signal: AbortSignal;
  unschedulableTimeoutMs?: number;
  drainTimeoutMs?: number;
}

/**
 * Runs the hop pod to completion. Resolves with the coordinator's exit code (or -1 with the
 * cluster's reason when it never ran); rejects on persistent API errors or abort.
 */
export async function runHop(client: KubeOps, opts: RunHopOptions): Promise<PodOutcome> {
  const pod = hopPod(opts);
  const secret = hopSecret(opts.runId, opts.jobspecYaml, { resultsToken: opts.resultsToken });
  const secretName = secret.metadata!.name!;
  await client.createSecret(secret, { signal: opts.signal });
  try {
    return await runPod(client, pod, {
      signal: opts.signal,
      onLine: (line) => opts.onLine(line),
      log: opts.log,
      timeoutMs: opts.timeoutSeconds * 1000,
      unschedulableTimeoutMs: opts.unschedulableTimeoutMs,
      drainTimeoutMs: opts.drainTimeoutMs,
    });
  } finally {
    await client.deleteSecret(secretName, { signal: AbortSignal.timeout(30_000) }).catch((e) =>
      opts.log?.(`hop: delete secret ${secretName}: ${e instanceof Error ? e.message : e}`)
    );
  }
}
