/**
 * One container of a pod, from its environment to its termination: env (retrying
 * `CreateContainerConfigError`), mounts, the service account and `KUBERNETES_SERVICE_*`,
 * `$(VAR)` expansion, the launch (process or podman), and the status a real kubelet reports
 * at each step.
 *
 * @module
 */

import type { KObj } from "./store.ts";
import { LogBuffer } from "./logs.ts";
import { EnvError, resolveEnv } from "./env.ts";
import {
  type ContainerLaunch,
  type Handle,
  type KubeletHost,
  type MountSpec,
  now,
  type PodRun,
  SERVICE_ACCOUNT_DIR,
  type Termination,
} from "./pod_run.ts";
import { startProcess } from "./runtime_process.ts";
import { startPodman } from "./runtime_podman.ts";

/** Runs one container once; undefined when the pod was stopped before it ran. */
/** Resolves env (retrying on CreateContainerConfigError), runs one container. */
export async function runOne(
  host: KubeletHost,
  run: PodRun,
  pod: KObj,
  c: KObj,
  init: boolean,
  volumes: Map<string, string>,
  /** Kill the container this long after it starts and report OOMKilled (oomKill fault). */
  oomAfterMs: number | undefined,
  onStart?: () => void,
): Promise<Termination | undefined> {
  let env: { env: Record<string, string>; secretEnv: Record<string, string> } | undefined;
  while (!run.stopped) {
    try {
      env = resolveEnv(host.store, host.nodeName, pod, c);
      break;
    } catch (e) {
      if (!(e instanceof EnvError)) throw e;
      run.cstate.set(c.name, {
        state: { waiting: { reason: "CreateContainerConfigError", message: e.message } },
        ready: false,
        started: false,
        init,
      });
      host.status(run, () => {});
      host.event(pod, "Warning", "Failed", `Error: ${e.message}`);
      await host.sleep(run, 500);
    }
  }
  if (run.stopped || !env) return undefined;
  const mounts: MountSpec[] = [];
  for (const m of (c.volumeMounts ?? []) as KObj[]) {
    const volDir = volumes.get(m.name);
    if (!volDir) {
      const msg = `volume "${m.name}" not found in pod spec`;
      run.cstate.set(c.name, {
        state: { waiting: { reason: "CreateContainerConfigError", message: msg } },
        ready: false,
        started: false,
        init,
      });
      host.status(run, () => {});
      return undefined;
    }
    let hostPath = volDir;
    if (m.subPath) {
      hostPath = `${volDir}/${m.subPath}`;
      await Deno.mkdir(hostPath, { recursive: true }).catch(() => {});
    }
    mounts.push({ hostPath, mountPath: m.mountPath, readOnly: !!m.readOnly });
  }
  if (run.saDir && !mounts.some((m) => m.mountPath === SERVICE_ACCOUNT_DIR)) {
    mounts.push({ hostPath: run.saDir, mountPath: SERVICE_ACCOUNT_DIR, readOnly: true });
  }
  if (host.cluster) {
    const { host: apiHost, port } = host.cluster;
    const k8sEnv: Record<string, string> = {
      KUBERNETES_SERVICE_HOST: apiHost,
      KUBERNETES_SERVICE_PORT: String(port),
      KUBERNETES_SERVICE_PORT_HTTPS: String(port),
      KUBERNETES_PORT: `tcp://${apiHost}:${port}`,
    };
    for (const [k, v] of Object.entries(k8sEnv)) {
      if (!(k in env.env) && !(k in env.secretEnv)) env.env[k] = v;
    }
  }
  const expand = (s: string) =>
    s.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)|\$\$/g, (all, name) => {
      if (all === "$$") return "$";
      const v = env!.env[name] ?? env!.secretEnv[name];
      return v === undefined ? all : v;
    });
  const sc = { ...(pod.spec.securityContext ?? {}), ...(c.securityContext ?? {}) };
  let launch: ContainerLaunch = {
    pod,
    container: c.name,
    init,
    image: c.image,
    command: c.command ? (c.command as string[]).map(expand) : undefined,
    args: ((c.args ?? []) as string[]).map(expand),
    env: env.env,
    secretEnv: env.secretEnv,
    workingDir: c.workingDir,
    mounts,
    mode: await host.modeFor(c.image),
    runAsUser: sc.runAsUser,
    runAsGroup: sc.runAsGroup,
    groups: [
      ...(pod.spec.securityContext?.fsGroup !== undefined
        ? [pod.spec.securityContext.fsGroup]
        : []),
      ...((pod.spec.securityContext?.supplementalGroups ?? []) as number[]),
    ],
    privileged: sc.privileged,
  };
  launch = host.opts.rewrite?.(launch) ?? launch;
  const log = new LogBuffer();
  const previous = run.logs.get(c.name);
  if (previous) run.prevLogs.set(c.name, previous);
  run.logs.set(c.name, log);
  const startedAt = now();
  const containerID = `${launch.mode === "podman" ? "podman" : "process"}://${
    crypto.randomUUID().replaceAll("-", "")
  }`;
  let handle: Handle;
  try {
    handle = launch.mode === "podman"
      ? startPodman(host, run, launch, log)
      : await startProcess(host, run, launch, log);
  } catch (e) {
    log.end();
    const t = {
      exitCode: 128,
      reason: "StartError",
      message: e instanceof Error ? e.message : String(e),
    };
    run.cstate.set(c.name, {
      state: {
        terminated: { ...t, startedAt, finishedAt: now(), containerID },
      },
      ready: false,
      started: false,
      init,
    });
    host.status(run, () => {});
    host.event(pod, "Warning", "Failed", `Error: ${t.message}`);
    onStart?.();
    return t;
  }
  run.handles.add(handle);
  if (run.stopped) run.graceMs > 0 ? handle.terminate(run.graceMs) : handle.kill();
  run.cstate.set(c.name, {
    state: { running: { startedAt } },
    ready: !init,
    started: true,
    init,
    containerID,
  });
  host.event(pod, "Normal", "Started", `Started container ${c.name}`);
  host.status(run, () => {});
  onStart?.();
  const oomTimer = oomAfterMs === undefined
    ? undefined
    : setTimeout(() => handle.kill(), oomAfterMs);
  const code = await handle.exited;
  clearTimeout(oomTimer);
  run.handles.delete(handle);
  log.end();
  let t: Termination;
  if (oomAfterMs !== undefined) {
    t = { exitCode: 137, reason: "OOMKilled" };
  } else {
    const startError = handle.startError?.();
    if (startError) {
      // As containerd reports a command that cannot be executed: never started, exit 128.
      t = { exitCode: 128, reason: "StartError", message: startError };
      host.event(pod, "Warning", "Failed", `Error: ${startError}`);
    } else {
      t = { exitCode: code, reason: code === 0 ? "Completed" : "Error" };
      const sig = handle.signal?.();
      if (sig) t.signal = sig;
    }
  }
  run.cstate.set(c.name, {
    state: { terminated: { ...t, startedAt, finishedAt: now(), containerID } },
    ready: false,
    started: false,
    init,
    containerID,
  });
  host.status(run, () => {});
  return t;
}
