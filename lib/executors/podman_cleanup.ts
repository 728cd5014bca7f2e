/**
 * `--cleanup` for the podman backend: removes what gangplank runs left on a podman host.
 *
 * @module
 */
import { hostname } from "node:os";
import { type PodmanClient, removeByLabels } from "../podman/mod.ts";
import { LABEL_COORDINATOR, LABEL_RUN_ID } from "../workspec/worker_image.ts";
import { sameProcess } from "./local_cleanup.ts";

/** A run id (or any string) as part of a podman object name. */
export function safeName(s: string): string {
  return s.replace(/[^a-zA-Z0-9_.-]/g, "-");
}

/** What a cleanup removed, and the runs it left alone (`<run id>: <why>`). */
export interface PodmanCleanup {
  containers: string[];
  volumes: string[];
  secrets: string[];
  kept: string[];
}

/**
 * Removes containers and volumes labelled with `runId`, and the run's secrets. Without
 * `runId`: those of every gangplank run whose coordinator is gone — a run whose coordinator
 * still runs on this host, or runs on another host (which cannot be checked from here), is
 * left alone and listed in `kept` (`<run id>: <why>`). Returns what was removed.
 */
export async function cleanupPodmanRuns(
  client: PodmanClient,
  opts: { runId?: string; signal: AbortSignal },
): Promise<PodmanCleanup> {
  const { signal } = opts;
  if (opts.runId) {
    const removed = await removeByLabels(client, { [LABEL_RUN_ID]: opts.runId }, { signal });
    const prefix = `gangplank-${safeName(opts.runId)}-`;
    const secrets = (await client.listSecrets({ signal }))
      .map((s) => s.Spec.Name).filter((n) => n.startsWith(prefix));
    for (const s of secrets) await client.removeSecret(s, { signal });
    return { ...removed, secrets, kept: [] };
  }
  const any = { [LABEL_RUN_ID]: undefined };
  const containers = await client.listContainers({ signal, labels: any });
  const volumes = await client.listVolumes({ signal, labels: any });
  // Runs to leave alone: their coordinator label names a live process, or another host.
  const kept = new Map<string, string>();
  const here = hostname();
  for (const labels of [...containers, ...volumes].map((x) => x.Labels ?? {})) {
    const run = labels[LABEL_RUN_ID];
    const coordinator = labels[LABEL_COORDINATOR];
    if (!run || !coordinator || kept.has(run)) continue;
    const [host, pid, start] = coordinator.split("/");
    if (host !== here) kept.set(run, `its coordinator runs on ${host}: use --run-id`);
    else if (sameProcess(Number(pid), start)) {
      kept.set(run, `its coordinator (pid ${pid}) is still running`);
    }
  }
  const dead = (labels: Record<string, string> | null | undefined) =>
    !kept.has(labels?.[LABEL_RUN_ID] ?? "");
  const result = { containers: [] as string[], volumes: [] as string[], secrets: [] as string[] };
  for (const c of containers.filter((c) => dead(c.Labels))) {
    await client.removeContainer(c.Id, { signal });
    result.containers.push(c.Id);
  }
  for (const v of volumes.filter((v) => dead(v.Labels))) {
    await client.removeVolume(v.Name, { signal });
    result.volumes.push(v.Name);
  }
  const keptPrefixes = [...kept.keys()].map((r) => `gangplank-${safeName(r)}-`);
  for (const s of await client.listSecrets({ signal })) {
    const n = s.Spec.Name;
    if (!n.startsWith("gangplank-") || keptPrefixes.some((p) => n.startsWith(p))) continue;
    await client.removeSecret(n, { signal });
    result.secrets.push(n);
  }
  return { ...result, kept: [...kept].map(([run, why]) => `${run}: ${why}`) };
}
