/**
 * What the simulated kubelet writes into a pod's status and the Events it records: container
 * statuses from a run, conditions, and the scheduler's reasons for leaving a pod Pending.
 *
 * @module
 */

import type { KObj, ObjectStore } from "./store.ts";
import type { Faults } from "./faults.ts";
import { parseQuantity } from "./quantity.ts";
import { type KubeletOptions, now, type PodRun } from "./pod_run.ts";

/** Writes `status.initContainerStatuses`/`containerStatuses` from a pod's run state. */
export function writeContainerStatuses(run: PodRun, o: KObj): void {
  const mk = (c: KObj, init: boolean) => {
    const s = run.cstate.get(c.name);
    const st: KObj = {
      name: c.name,
      image: c.image,
      imageID: "",
      ready: s?.ready ?? false,
      restartCount: run.restarts.get(c.name)?.count ?? 0,
      started: s?.started ?? false,
      state: s?.state ?? { waiting: { reason: init ? "PodInitializing" : "ContainerCreating" } },
    } as unknown as KObj;
    const last = run.restarts.get(c.name)?.lastState;
    if (last) st.lastState = last;
    if (s?.containerID) st.containerID = s.containerID;
    return st;
  };
  const inits = (o.spec?.initContainers ?? []) as KObj[];
  if (inits.length) o.status.initContainerStatuses = inits.map((c) => mk(c, true));
  if (run.cstate.size || o.spec?.nodeName) {
    o.status.containerStatuses = ((o.spec?.containers ?? []) as KObj[]).map((c) => {
      const st = mk(c, false);
      if (!run.cstate.has(c.name)) {
        st.state = {
          waiting: { reason: inits.length ? "PodInitializing" : "ContainerCreating" },
        };
      }
      return st;
    });
  }
}

/** Sets one pod condition (with lastTransitionTime when it flips). */
export function setCond(
  status: KObj["status"],
  type: string,
  value: boolean,
  reason?: string,
  msg?: string,
) {
  status.conditions ??= [];
  const conds = status.conditions as KObj[];
  let c = conds.find((x) => x.type === type);
  const s = value ? "True" : "False";
  if (!c) {
    c = { type } as unknown as KObj;
    conds.push(c);
  }
  if (c.status !== s) c.lastTransitionTime = now();
  c.status = s;
  c.lastProbeTime = null;
  if (reason) c.reason = reason;
  else delete c.reason;
  if (msg) c.message = msg;
  else delete c.message;
}

/** Records Events the way the kubelet's event recorder does (repeats bump `count`). */
export class EventRecorder {
  #store: ObjectStore;
  #nodeName: string;
  #events = new Map<string, { name: string; at: number }>();

  constructor(store: ObjectStore, nodeName: string) {
    this.#store = store;
    this.#nodeName = nodeName;
  }

  /** Records (or repeats) one Event about a pod. */
  record(pod: KObj, type: string, reason: string, message: string): void {
    // Repeats of the same event bump `count` (at most every 2 s), as the event recorder does.
    const key = `${pod.metadata.uid}|${type}|${reason}|${message}`;
    const seen = this.#events.get(key);
    if (seen) {
      if (Date.now() - seen.at < 2000) return;
      seen.at = Date.now();
      this.#store.mutate("events", pod.metadata.namespace, seen.name, (e) => {
        e.count = (e.count ?? 1) + 1;
        e.lastTimestamp = now();
      });
      return;
    }
    try {
      const name = `${pod.metadata.name}.${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
      this.#store.create("events", {
        apiVersion: "v1",
        kind: "Event",
        metadata: { name, namespace: pod.metadata.namespace },
        involvedObject: {
          apiVersion: "v1",
          kind: "Pod",
          name: pod.metadata.name,
          namespace: pod.metadata.namespace,
          uid: pod.metadata.uid,
        },
        reason,
        message,
        type,
        source: { component: "kubelet", host: this.#nodeName },
        firstTimestamp: now(),
        lastTimestamp: now(),
        count: 1,
      });
      this.#events.set(key, { name, at: Date.now() });
    } catch { /* events are best effort */ }
  }
}

/** Why the one node cannot run this pod now (scheduler message), or undefined. */
export function unschedulableReason(
  store: ObjectStore,
  faults: Faults,
  nodeName: string,
  pod: KObj,
): string | undefined {
  if (faults.matchPod("unschedulable", pod, false)) {
    return "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. " +
      "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.";
  }
  const node = store.get("nodes", undefined, nodeName);
  const alloc = (node?.status?.allocatable ?? {}) as Record<string, string>;
  const labels = (node?.metadata.labels ?? {}) as Record<string, string>;
  for (const [k, v] of Object.entries((pod.spec?.nodeSelector ?? {}) as Record<string, string>)) {
    if (labels[k] !== v) {
      return "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. " +
        "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.";
    }
  }
  const want: Record<string, number> = {};
  for (const c of [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])]) {
    const req = { ...(c.resources?.limits ?? {}), ...(c.resources?.requests ?? {}) };
    for (const [k, v] of Object.entries(req)) {
      want[k] = Math.max(want[k] ?? 0, parseQuantity(v as string));
    }
  }
  const short = Object.entries(want).filter(([k, v]) =>
    !(k in alloc) || parseQuantity(alloc[k]) < v
  );
  if (short.length) {
    return `0/1 nodes are available: ${
      short.map(([k]) => `1 Insufficient ${k}`).join(", ")
    }. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.`;
  }
  return undefined;
}

/** The Node object of the simulated node (capacity, addresses, Ready, nodeInfo). */
export function nodeObject(opts: KubeletOptions, nodeName: string, nodeIP: string): KObj {
  const arch = Deno.build.arch === "x86_64" ? "amd64" : "arm64";
  const alloc: Record<string, string> = {
    cpu: opts.cpu ?? "16",
    memory: opts.memory ?? "64Gi",
    pods: "110",
    "ephemeral-storage": "100Gi",
  };
  if (opts.kvm) alloc["devices.kubevirt.io/kvm"] = "1k";
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name: nodeName,
      labels: {
        "kubernetes.io/arch": arch,
        "kubernetes.io/os": "linux",
        "kubernetes.io/hostname": nodeName,
        "beta.kubernetes.io/arch": arch,
        "beta.kubernetes.io/os": "linux",
      },
    },
    spec: {},
    status: {
      capacity: alloc,
      allocatable: alloc,
      addresses: [
        { type: "InternalIP", address: nodeIP },
        { type: "Hostname", address: nodeName },
      ],
      conditions: [{
        type: "Ready",
        status: "True",
        reason: "KubeletReady",
        message: "kubelet is posting ready status",
        lastHeartbeatTime: now(),
        lastTransitionTime: now(),
      }],
      nodeInfo: {
        architecture: arch,
        operatingSystem: "linux",
        kubeletVersion: "v1.32.0",
        kubeProxyVersion: "v1.32.0",
        containerRuntimeVersion: "podman://4.3.1",
        osImage: "kube-sim",
        kernelVersion: Deno.osRelease(),
        machineID: "",
        systemUUID: "",
        bootID: "",
      },
    },
  };
}
