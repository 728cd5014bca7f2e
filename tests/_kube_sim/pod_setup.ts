/**
 * The steps of a pod before its containers run, as the scheduler and kubelet take them:
 * binding to the node (or Pending with the scheduler's reason), `activeDeadlineSeconds`,
 * image checks (the `imagePullError` fault; podman mode: images not in local storage), and
 * volumes (`FailedMount` retried) with the service account files.
 *
 * @module
 */

import type { KObj } from "./store.ts";
import { type KubeletHost, now, type PodRun } from "./pod_run.ts";
import { setCond, unschedulableReason, writeContainerStatuses } from "./pod_status.ts";
import { MountError, prepareVolumes } from "./volumes.ts";

/** Waits until the pod fits the node, binds it, and arms its deadline; the bound pod. */
export async function schedulePod(host: KubeletHost, run: PodRun): Promise<KObj | undefined> {
  const step = host.opts.stepMs ?? 20;
  await host.sleep(run, step);
  // --- scheduling
  let lastMsg = "";
  while (!run.stopped) {
    const pod = host.store.get("pods", run.ns, run.name);
    if (!pod || pod.metadata.uid !== run.uid) return undefined;
    const why = unschedulableReason(host.store, host.faults, host.nodeName, pod);
    if (!why) break;
    if (why !== lastMsg) {
      lastMsg = why;
      host.status(run, (s) => {
        s.phase = "Pending";
        s.qosClass ??= "BestEffort";
        setCond(s, "PodScheduled", false, "Unschedulable", why);
      });
      host.event(pod, "Warning", "FailedScheduling", why);
    }
    await host.sleep(run, 250);
  }
  if (run.stopped) return undefined;
  if (host.network && !run.address) {
    try {
      run.address = await host.network.add(run.uid);
    } catch (e) {
      host.log(`pod ${run.ns}/${run.name}: ${e instanceof Error ? e.message : e}`);
      host.event(
        host.store.get("pods", run.ns, run.name) ?? ({ metadata: { name: run.name } } as KObj),
        "Warning",
        "FailedCreatePodSandBox",
        `Failed to create pod sandbox: ${e instanceof Error ? e.message : e}`,
      );
      return undefined;
    }
  }
  const podIP = run.address?.ip ?? host.nodeIP;
  const bound = host.store.mutate("pods", run.ns, run.name, (o) => {
    if (o.metadata.uid !== run.uid) return;
    o.spec.nodeName = host.nodeName;
    o.status ??= {};
    const s = o.status;
    s.phase = "Pending";
    s.hostIP = host.nodeIP;
    s.hostIPs = [{ ip: host.nodeIP }];
    s.podIP = podIP;
    s.podIPs = [{ ip: podIP }];
    s.startTime = now();
    s.qosClass ??= "Burstable";
    setCond(s, "PodScheduled", true);
    const hasInit = (o.spec.initContainers ?? []).length > 0;
    setCond(
      s,
      "Initialized",
      !hasInit,
      hasInit ? "ContainersNotInitialized" : undefined,
      hasInit ? "containers with incomplete status: [init]" : undefined,
    );
    setCond(s, "ContainersReady", false, "ContainersNotReady");
    setCond(s, "Ready", false, "ContainersNotReady");
    writeContainerStatuses(run, o);
  });
  if (!bound) return undefined;
  const pod = bound;
  host.event(
    pod,
    "Normal",
    "Scheduled",
    `Successfully assigned ${run.ns}/${run.name} to ${host.nodeName}`,
  );
  const deadlineS = pod.spec.activeDeadlineSeconds as number | undefined;
  if (deadlineS !== undefined) {
    const t = setTimeout(() => {
      host.event(
        pod,
        "Normal",
        "DeadlineExceeded",
        "Pod was active on the node longer than the specified deadline",
      );
      host.stop(run, Math.min(host.opts.maxGraceMs ?? 3000, 1000), {
        phase: "Failed",
        reason: "DeadlineExceeded",
        message: "Pod was active on the node longer than the specified deadline",
      });
    }, deadlineS * 1000);
    run.timers.add(t);
  }
  return pod;
}

/** Waits until every image of the pod is available (ErrImagePull / ImagePullBackOff). */
export async function waitForImages(
  host: KubeletHost,
  run: PodRun,
  pod: KObj,
  imagePullFault: boolean,
): Promise<void> {
  // --- images: the imagePullError fault, or (podman mode) an image not in local storage
  const inits0 = (pod.spec.initContainers ?? []) as KObj[];
  const all = [...inits0, ...(pod.spec.containers ?? [])] as KObj[];
  const missingImage = async (): Promise<KObj | undefined> => {
    if (imagePullFault) return all[0];
    if (host.opts.mode !== "podman") return undefined;
    for (const c of all) if (!(await host.imageExists(c.image))) return c;
    return undefined;
  };
  let back = false;
  let delay = 400;
  for (let c = await missingImage(); c && !run.stopped; c = await missingImage()) {
    const image = c.image ?? "";
    const reason = back ? "ImagePullBackOff" : "ErrImagePull";
    const message = back
      ? `Back-off pulling image "${image}"`
      : imagePullFault
      ? `failed to pull and unpack image "${image}": failed to resolve reference ` +
        `"${image}": pull access denied, repository does not exist or may require ` +
        `authorization`
      : `failed to pull image "${image}": not in local podman storage (kube-sim never pulls)`;
    run.cstate.set(c.name, {
      state: { waiting: { reason, message } },
      ready: false,
      started: false,
      init: inits0.includes(c),
    });
    host.status(run, () => {});
    host.event(pod, "Warning", back ? "BackOff" : "Failed", message);
    back = !back;
    await host.sleep(run, delay);
    delay = Math.min(delay * 2, 5000); // like the kubelet's back-off (shorter)
  }
  if (run.stopped) return;
  for (const c of all) {
    const st = run.cstate.get(c.name)?.state;
    if (st && "waiting" in st) run.cstate.delete(c.name); // the image turned up
  }
}

/** Sets up the pod's volumes (retrying FailedMount); volume name → host dir. */
export async function mountVolumes(
  host: KubeletHost,
  run: PodRun,
  pod: KObj,
): Promise<Map<string, string> | undefined> {
  // --- volumes
  let mounts: Map<string, string> | undefined;
  while (!run.stopped) {
    try {
      mounts = await prepareVolumes(host.store, run, pod);
      break;
    } catch (e) {
      if (!(e instanceof MountError)) throw e;
      host.event(pod, "Warning", "FailedMount", e.message);
      await host.sleep(run, 500);
    }
  }
  if (run.stopped || !mounts) return undefined;
  if (host.cluster && pod.spec.automountServiceAccountToken !== false) {
    run.saDir = `${run.tmp}/serviceaccount`;
    await Deno.mkdir(run.saDir, { recursive: true });
    await Deno.writeTextFile(`${run.saDir}/token`, host.cluster.token, { mode: 0o644 });
    await Deno.writeTextFile(`${run.saDir}/ca.crt`, host.cluster.caCert, { mode: 0o644 });
    await Deno.writeTextFile(`${run.saDir}/namespace`, run.ns, { mode: 0o644 });
  }
  return mounts;
}
