/**
 * Pure interpretation of a pod's status: still pending (maybe unschedulable), running, failed
 * before running (image pull and container config errors), or finished with an exit code and
 * the cluster's own reason. Differences from Gangplank (§12.1.16): phase `Failed` is a failure,
 * and the exit code comes from the container's terminated state.
 *
 * @module
 */

import type { V1ContainerStatus, V1Pod } from "@kubernetes/client-node";

/** What a pod's status says. */
export type PodVerdict =
  | { kind: "pending"; unschedulable?: string }
  | { kind: "running"; started: string[] }
  | { kind: "failed"; exitCode: number; reason: string }
  | { kind: "done"; exitCode: number; reason?: string };

/** Waiting reasons that mean the container will not start without someone fixing something. */
export const FATAL_WAITING_REASONS: ReadonlySet<string> = new Set([
  "ErrImagePull",
  "ImagePullBackOff",
  "InvalidImageName",
  "ErrImageNeverPull",
  "CreateContainerConfigError",
  "CreateContainerError",
  "RunContainerError",
]);

function describe(reason: string | undefined, message: string | undefined): string {
  const r = reason ?? "";
  const m = (message ?? "").trim();
  return r && m ? `${r}: ${m}` : r || m;
}

/** Names of the containers (init and main) that have started (running or terminated). */
export function startedContainers(pod: V1Pod): string[] {
  const all = [
    ...(pod.status?.initContainerStatuses ?? []),
    ...(pod.status?.containerStatuses ?? []),
  ];
  return all.filter((c) => c.state?.running || c.state?.terminated).map((c) => c.name);
}

/** True when the named container has terminated. */
export function containerTerminated(pod: V1Pod, name: string): boolean {
  const all = [
    ...(pod.status?.initContainerStatuses ?? []),
    ...(pod.status?.containerStatuses ?? []),
  ];
  return !!all.find((c) => c.name === name)?.state?.terminated;
}

/**
 * Judges a pod. `main` names the container whose exit code is the worker's (default: the
 * first container of the spec).
 */
export function podVerdict(pod: V1Pod, main?: string): PodVerdict {
  const status = pod.status ?? {};
  const inits: V1ContainerStatus[] = status.initContainerStatuses ?? [];
  const mains: V1ContainerStatus[] = status.containerStatuses ?? [];
  const mainName = main ?? pod.spec?.containers?.[0]?.name;
  const mainStatus = mains.find((c) => c.name === mainName) ?? mains[0];
  const mt = mainStatus?.state?.terminated;

  // A terminal phase or the main container's end decides, with the most precise reason.
  if (status.phase === "Failed") {
    const failedInit = inits.find((c) => (c.state?.terminated?.exitCode ?? 0) !== 0);
    if (failedInit && !mt) {
      const t = failedInit.state!.terminated!;
      return {
        kind: "failed",
        exitCode: t.exitCode,
        reason: `init container ${failedInit.name} failed: ` +
          describe(t.reason, t.message || `exit code ${t.exitCode}`),
      };
    }
    const podReason = describe(status.reason, status.message);
    if (mt) {
      const exitCode = mt.exitCode !== 0 ? mt.exitCode : 1;
      const reason = mt.reason === "OOMKilled"
        ? describe("OOMKilled", mt.message || `container ${mainStatus!.name} ran out of memory`)
        : podReason || (mt.reason && mt.reason !== "Error" ? describe(mt.reason, mt.message) : "");
      return reason ? { kind: "failed", exitCode, reason } : { kind: "done", exitCode };
    }
    const running = mainStatus?.state?.running;
    return {
      kind: "failed",
      exitCode: running ? 137 : -1,
      reason: podReason || "pod failed",
    };
  }
  if (status.phase === "Succeeded") return { kind: "done", exitCode: mt?.exitCode ?? 0 };

  // Containers that cannot start, or that something restarts (a worker must run once: a
  // restart policy other than Never, set by whatever mutated the pod, would run it again).
  for (const c of [...inits, ...mains]) {
    const w = c.state?.waiting;
    if (w?.reason && FATAL_WAITING_REASONS.has(w.reason)) {
      return { kind: "failed", exitCode: -1, reason: describe(w.reason, w.message) };
    }
    const last = c.lastState?.terminated;
    if (w?.reason === "CrashLoopBackOff" || (last && (c.restartCount ?? 0) > 0)) {
      return {
        kind: "failed",
        exitCode: last?.exitCode || -1,
        reason: `container ${c.name} was restarted: ` +
          describe(w?.reason ?? last?.reason, w?.message || last?.message),
      };
    }
  }
  for (const c of inits) {
    const t = c.state?.terminated;
    if (t && t.exitCode !== 0) {
      return {
        kind: "failed",
        exitCode: t.exitCode,
        reason: `init container ${c.name} failed: ` +
          describe(t.reason, t.message || `exit code ${t.exitCode}`),
      };
    }
  }
  if (mt) {
    if (mt.reason === "OOMKilled") {
      return {
        kind: "failed",
        exitCode: mt.exitCode || 137,
        reason: describe(
          "OOMKilled",
          mt.message || `container ${mainStatus!.name} ran out of memory`,
        ),
      };
    }
    return { kind: "done", exitCode: mt.exitCode };
  }
  if (status.phase === "Running") return { kind: "running", started: startedContainers(pod) };
  const sched = (status.conditions ?? []).find((c) => c.type === "PodScheduled");
  if (sched?.status === "False" && sched.reason === "Unschedulable") {
    return { kind: "pending", unschedulable: describe("Unschedulable", sched.message) };
  }
  const started = startedContainers(pod);
  return started.length > 0 ? { kind: "running", started } : { kind: "pending" };
}
