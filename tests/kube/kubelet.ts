/**
 * The simulated scheduler + kubelet of the Kubernetes test API server. Every new pod is bound
 * to the one node, its volumes are prepared in a per-pod temp dir, its init containers run
 * one after the other and then its containers in parallel, and the pod's status follows what
 * a real kubelet reports (phase, conditions, `containerStatuses[].state`).
 *
 * Containers run in one of two ways:
 * - **podman** (`mode: "podman"`, or `"auto"` when the pod's image is in local podman
 *   storage): `podman run --rm --network host --pull never` with `-v` bind mounts of the
 *   per-pod volume dirs at their mountPaths. Plain `env` values go in argv (they are in the
 *   pod spec anyway); values from Secrets/ConfigMaps (`valueFrom`, `envFrom`) are passed as
 *   `--env NAME` with the value in podman's own environment, never in argv.
 * - **process** (otherwise): `command + args` run on the host (command[0] resolved through
 *   the container's PATH, else the host's). When the container has volume mounts, it runs
 *   under `unshare --mount` with each volume's host dir bind-mounted at its mountPath in a
 *   private mount namespace (needs root). Mount points missing on the host are made inside an
 *   overlay of their nearest existing ancestor, private to the container (so `/etc/pki/...`
 *   never appears on the host); only ones right under `/` are created on the host, and
 *   removed again when no pod of this process uses them. Without root, mountPaths are rewritten
 *   instead: the env var `KUBE_SIM_MOUNTS` holds a JSON map `{mountPath: hostDir}`, and a
 *   workingDir under a mountPath is rewritten to the host dir. The environment is exactly the
 *   container's env plus PATH/HOME/DENO_DIR from the host (and `processEnv`). The default
 *   working directory is the pod's temp dir.
 *
 * @module
 */

import { type KObj, ObjectStore } from "./store.ts";
import { signalExitCode } from "../../lib/errors/mod.ts";
import { Faults } from "./faults.ts";
import { LogBuffer } from "./logs.ts";

/** Options of the simulated kubelet. */
export interface KubeletOptions {
  /** How containers run (see the module doc). Default `"auto"`. */
  mode?: "auto" | "process" | "podman";
  /** The node's name. Default `kube-sim-node`. */
  nodeName?: string;
  /** Whether the node offers `devices.kubevirt.io/kvm` (allocatable 1k). Default false. */
  kvm?: boolean;
  /** Node allocatable cpu / memory. Default `"16"` / `"64Gi"`. */
  cpu?: string;
  memory?: string;
  /** Upper bound of the grace period actually waited before SIGKILL, ms. Default 3000. */
  maxGraceMs?: number;
  /** Delay between status transitions, ms (so watchers see each step). Default 20. */
  stepMs?: number;
  /** Extra environment for process-mode containers (e.g. `DENO_DIR`). */
  processEnv?: Record<string, string>;
  /**
   * Last chance to change how a container is run (command, env, mounts, mode) before it
   * starts; return a replacement or nothing to keep it.
   */
  rewrite?: (launch: ContainerLaunch) => ContainerLaunch | void;
  /** Diagnostics of the simulator (never secret values). */
  log?: (msg: string) => void;
}

/** One bind mount of a container. */
export interface MountSpec {
  hostPath: string;
  mountPath: string;
  readOnly: boolean;
}

/** Everything needed to start one container. */
export interface ContainerLaunch {
  pod: KObj;
  container: string;
  init: boolean;
  image: string;
  /** `command` (entrypoint override) or undefined to use the image's. */
  command?: string[];
  args: string[];
  /** Values from the pod spec (`env[].value`, fieldRef). */
  env: Record<string, string>;
  /** Values taken from Secrets / ConfigMaps (never put in argv). */
  secretEnv: Record<string, string>;
  workingDir?: string;
  mounts: MountSpec[];
  mode: "process" | "podman";
  runAsUser?: number;
  runAsGroup?: number;
  privileged?: boolean;
}

/** How a container ended. */
interface Termination {
  exitCode: number;
  reason: string;
  message?: string;
  signal?: number;
}

interface Handle {
  /** SIGTERM, then SIGKILL after graceMs. */
  terminate(graceMs: number): void;
  kill(): void;
  exited: Promise<number>;
  /** Exit was caused by a signal (number) when known. */
  signal?: () => number | undefined;
}

type CState =
  | { waiting: { reason: string; message?: string } }
  | { running: { startedAt: string } }
  | {
    terminated: {
      exitCode: number;
      reason: string;
      message?: string;
      signal?: number;
      startedAt: string;
      finishedAt: string;
      containerID: string;
    };
  };

interface PodRun {
  uid: string;
  ns: string;
  name: string;
  tmp?: string;
  stopped: boolean;
  /** Why the pod was stopped; sets phase/reason/message of the final status. */
  override?: { phase: string; reason: string; message: string };
  handles: Set<Handle>;
  graceMs: number;
  cstate: Map<
    string,
    { state: CState; ready: boolean; started: boolean; init: boolean; containerID?: string }
  >;
  logs: Map<string, LogBuffer>;
  /** Logs of the previous instance of a restarted container (`previous=true`). */
  prevLogs: Map<string, LogBuffer>;
  /** Restart count and last termination of restarted containers. */
  restarts: Map<string, { count: number; lastState: CState }>;
  timers: Set<ReturnType<typeof setTimeout>>;
  wake: Set<() => void>;
  done: Promise<void>;
  mountRefs: string[];
  podmanNames: Set<string>;
  /** Host dir of the service account token mount, when automounted. */
  saDir?: string;
}

/** Where and how pods reach the API server (in-cluster config). */
export interface ClusterInfo {
  host: string;
  port: number;
  caCert: string;
  token: string;
}

/** Mount path of the service account token, CA and namespace files. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, "Z");
}

/** Converts a Kubernetes quantity (`2`, `500m`, `4Gi`, `1k`) to a number. */
export function parseQuantity(q: string | number): number {
  if (typeof q === "number") return q;
  const m = String(q).match(/^([0-9.]+)([a-zA-Z]*)$/);
  if (!m) return NaN;
  const n = Number(m[1]);
  const mult: Record<string, number> = {
    "": 1,
    m: 1e-3,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    Ki: 1024,
    Mi: 1024 ** 2,
    Gi: 1024 ** 3,
    Ti: 1024 ** 4,
  };
  return m[2] in mult ? n * mult[m[2]] : NaN;
}

const PODMAN_ENV_DENY = /^(PATH|HOME|TMPDIR|XDG_.*|CONTAINERS_.*|STORAGE_.*|REGISTRIES_.*)$/;

class EnvError extends Error {}
class MountError extends Error {}

/** Mount points created on the host for process-mode pods, reference counted. */
const createdMountPoints = new Map<string, number>();

/** The simulated scheduler and kubelet. Create with {@link Kubelet}, then `start()`. */
export class Kubelet {
  readonly nodeName: string;
  #store: ObjectStore;
  #faults: Faults;
  #opts: KubeletOptions;
  #runs = new Map<string, PodRun>();
  #unsub = () => {};
  #closed = false;
  #imageCache = new Map<string, Promise<boolean>>();
  #pending = new Set<Promise<unknown>>();
  #isRoot = Deno.uid() === 0;
  #cluster?: ClusterInfo;
  #events = new Map<string, { name: string; at: number }>();

  constructor(store: ObjectStore, faults: Faults, opts: KubeletOptions = {}) {
    this.#store = store;
    this.#faults = faults;
    this.#opts = opts;
    this.nodeName = opts.nodeName ?? "kube-sim-node";
  }

  #log(msg: string): void {
    this.#opts.log?.(`kubelet: ${msg}`);
  }

  /**
   * Tells the kubelet where the API server is: pods then get the service account files at
   * {@link SERVICE_ACCOUNT_DIR} (unless `automountServiceAccountToken: false`) and the
   * `KUBERNETES_SERVICE_HOST`/`_PORT` env, so in-cluster clients work.
   */
  setCluster(c: ClusterInfo): void {
    this.#cluster = c;
  }

  /** Registers the node and starts handling pods. */
  start(): void {
    const arch = Deno.build.arch === "x86_64" ? "amd64" : "arm64";
    const alloc: Record<string, string> = {
      cpu: this.#opts.cpu ?? "16",
      memory: this.#opts.memory ?? "64Gi",
      pods: "110",
      "ephemeral-storage": "100Gi",
    };
    if (this.#opts.kvm) alloc["devices.kubevirt.io/kvm"] = "1k";
    this.#store.create("nodes", {
      apiVersion: "v1",
      kind: "Node",
      metadata: {
        name: this.nodeName,
        labels: {
          "kubernetes.io/arch": arch,
          "kubernetes.io/os": "linux",
          "kubernetes.io/hostname": this.nodeName,
          "beta.kubernetes.io/arch": arch,
          "beta.kubernetes.io/os": "linux",
        },
      },
      spec: {},
      status: {
        capacity: alloc,
        allocatable: alloc,
        addresses: [
          { type: "InternalIP", address: "127.0.0.1" },
          { type: "Hostname", address: this.nodeName },
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
    });
    this.#unsub = this.#store.subscribe((ev) => {
      if (ev.resource !== "pods" || ev.type !== "ADDED" || this.#closed) return;
      const pod = ev.object;
      if (pod.spec?.nodeName && pod.spec.nodeName !== this.nodeName) return;
      this.#track(this.#startPod(pod));
    });
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#pending.add(p);
    p.finally(() => this.#pending.delete(p)).catch(() => {});
    return p;
  }

  /** Log buffer of one container of a pod, if it has started. */
  logBuffer(uid: string, container: string): LogBuffer | undefined {
    return this.#runs.get(uid)?.logs.get(container);
  }

  /** Log buffer of the previous instance of a restarted container. */
  previousLogBuffer(uid: string, container: string): LogBuffer | undefined {
    return this.#runs.get(uid)?.prevLogs.get(container);
  }

  /** Whether a pod still has live containers (delete must be graceful). */
  hasLiveContainers(uid: string): boolean {
    const r = this.#runs.get(uid);
    return !!r && r.handles.size > 0;
  }

  /**
   * Deletes a pod the way the API server + kubelet do: immediately when it has no running
   * containers or `graceSeconds` is 0, else marks `deletionTimestamp`, stops the containers
   * (SIGTERM, SIGKILL after the grace period, bounded by `maxGraceMs`) and removes the object
   * once they are gone. Returns the object as the DELETE answer carries it.
   */
  deletePod(ns: string, name: string, graceSeconds?: number): KObj | undefined {
    const pod = this.#store.get("pods", ns, name);
    if (!pod) return undefined;
    const grace = graceSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30;
    const run = this.#runs.get(pod.metadata.uid!);
    const live = run && run.handles.size > 0 && !run.stopped;
    if (!live || grace === 0 || !pod.spec?.nodeName) {
      if (run) this.#stop(run, 0);
      return this.#store.remove("pods", ns, name);
    }
    if (pod.metadata.deletionTimestamp) return pod;
    const graceMs = Math.min(grace * 1000, this.#opts.maxGraceMs ?? 3000);
    const marked = this.#store.mutate("pods", ns, name, (o) => {
      o.metadata.deletionTimestamp = new Date(Date.now() + grace * 1000).toISOString()
        .replace(/\.\d+Z$/, "Z");
      o.metadata.deletionGracePeriodSeconds = grace;
    });
    this.#event(pod, "Normal", "Killing", `Stopping container ${pod.spec.containers?.[0]?.name}`);
    this.#stop(run, graceMs);
    this.#track(
      run.done.then(() => {
        const cur = this.#store.get("pods", ns, name);
        if (cur && cur.metadata.uid === run.uid) this.#store.remove("pods", ns, name);
      }),
    );
    return marked;
  }

  #stop(run: PodRun, graceMs: number, override?: PodRun["override"]): void {
    if (override && !run.override) run.override = override;
    run.stopped = true;
    run.graceMs = graceMs;
    for (const h of run.handles) graceMs > 0 ? h.terminate(graceMs) : h.kill();
    for (const w of [...run.wake]) w();
    for (const t of run.timers) clearTimeout(t);
    run.timers.clear();
  }

  /** Stops every pod (SIGKILL), waits for them, and removes their temp dirs. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#unsub();
    for (const run of this.#runs.values()) this.#stop(run, 0);
    const deadline = Date.now() + 15_000;
    while (this.#pending.size && Date.now() < deadline) {
      await Promise.race([
        Promise.allSettled([...this.#pending]),
        new Promise((r) => setTimeout(r, 500)),
      ]);
    }
  }

  #sleep(run: PodRun, ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (run.stopped) return resolve();
      const wake = () => {
        clearTimeout(t);
        run.wake.delete(wake);
        resolve();
      };
      const t = setTimeout(wake, ms);
      run.wake.add(wake);
    });
  }

  #status(run: PodRun, fn: (status: KObj["status"], pod: KObj) => void): KObj | undefined {
    return this.#store.mutate("pods", run.ns, run.name, (o) => {
      if (o.metadata.uid !== run.uid) return;
      o.status ??= {};
      fn(o.status, o);
      this.#writeContainerStatuses(run, o);
    });
  }

  #writeContainerStatuses(run: PodRun, o: KObj): void {
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

  #setCond(status: KObj["status"], type: string, value: boolean, reason?: string, msg?: string) {
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

  #event(pod: KObj, type: string, reason: string, message: string): void {
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
        source: { component: "kubelet", host: this.nodeName },
        firstTimestamp: now(),
        lastTimestamp: now(),
        count: 1,
      });
      this.#events.set(key, { name, at: Date.now() });
    } catch { /* events are best effort */ }
  }

  #unschedulableReason(pod: KObj): string | undefined {
    if (this.#faults.matchPod("unschedulable", pod, false)) {
      return "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. " +
        "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.";
    }
    const node = this.#store.get("nodes", undefined, this.nodeName);
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

  async #startPod(pod0: KObj): Promise<void> {
    let resolveDone = () => {};
    const run: PodRun = {
      uid: pod0.metadata.uid!,
      ns: pod0.metadata.namespace!,
      name: pod0.metadata.name,
      stopped: false,
      handles: new Set(),
      graceMs: 0,
      cstate: new Map(),
      logs: new Map(),
      prevLogs: new Map(),
      restarts: new Map(),
      timers: new Set(),
      wake: new Set(),
      done: new Promise<void>((r) => resolveDone = r),
      mountRefs: [],
      podmanNames: new Set(),
    };
    this.#runs.set(run.uid, run);
    // Decide per-pod faults once, when the pod is first seen.
    const fault = {
      imagePull: this.#faults.matchPod("imagePullError", pod0),
      evict: this.#faults.matchPod("evict", pod0),
      oom: this.#faults.matchPod("oomKill", pod0),
      extDelete: this.#faults.matchPod("externalDelete", pod0),
      evictOpts: this.#faults.options("evict"),
      oomOpts: this.#faults.options("oomKill"),
      extOpts: this.#faults.options("externalDelete"),
    };
    try {
      await this.#runPod(run, fault);
    } catch (e) {
      this.#log(`pod ${run.ns}/${run.name}: ${e instanceof Error ? e.stack : e}`);
    } finally {
      for (const t of run.timers) clearTimeout(t);
      for (const b of run.logs.values()) b.end();
      await this.#cleanup(run);
      resolveDone();
      // Keep logs readable while the pod object exists; forget the run when it is gone.
      const forget = () => {
        const cur = this.#store.list("pods", run.ns).find((p) => p.metadata.uid === run.uid);
        if (!cur) {
          this.#runs.delete(run.uid);
          return true;
        }
        return false;
      };
      if (!forget()) {
        const unsub = this.#store.subscribe((ev) => {
          if (ev.resource === "pods" && ev.type === "DELETED" && forget()) unsub();
        });
        if (this.#closed) unsub();
      }
    }
  }

  async #runPod(
    run: PodRun,
    fault: {
      imagePull: boolean;
      evict: boolean;
      oom: boolean;
      extDelete: boolean;
      // deno-lint-ignore no-explicit-any
      evictOpts: Record<string, any>;
      // deno-lint-ignore no-explicit-any
      oomOpts: Record<string, any>;
      // deno-lint-ignore no-explicit-any
      extOpts: Record<string, any>;
    },
  ): Promise<void> {
    const step = this.#opts.stepMs ?? 20;
    await this.#sleep(run, step);
    // --- scheduling
    let lastMsg = "";
    while (!run.stopped) {
      const pod = this.#store.get("pods", run.ns, run.name);
      if (!pod || pod.metadata.uid !== run.uid) return;
      const why = this.#unschedulableReason(pod);
      if (!why) break;
      if (why !== lastMsg) {
        lastMsg = why;
        this.#status(run, (s) => {
          s.phase = "Pending";
          s.qosClass ??= "BestEffort";
          this.#setCond(s, "PodScheduled", false, "Unschedulable", why);
        });
        this.#event(pod, "Warning", "FailedScheduling", why);
      }
      await this.#sleep(run, 250);
    }
    if (run.stopped) return;
    const bound = this.#store.mutate("pods", run.ns, run.name, (o) => {
      if (o.metadata.uid !== run.uid) return;
      o.spec.nodeName = this.nodeName;
      o.status ??= {};
      const s = o.status;
      s.phase = "Pending";
      s.hostIP = "127.0.0.1";
      s.hostIPs = [{ ip: "127.0.0.1" }];
      s.podIP = "127.0.0.1";
      s.podIPs = [{ ip: "127.0.0.1" }];
      s.startTime = now();
      s.qosClass ??= "Burstable";
      this.#setCond(s, "PodScheduled", true);
      const hasInit = (o.spec.initContainers ?? []).length > 0;
      this.#setCond(
        s,
        "Initialized",
        !hasInit,
        hasInit ? "ContainersNotInitialized" : undefined,
        hasInit ? "containers with incomplete status: [init]" : undefined,
      );
      this.#setCond(s, "ContainersReady", false, "ContainersNotReady");
      this.#setCond(s, "Ready", false, "ContainersNotReady");
      this.#writeContainerStatuses(run, o);
    });
    if (!bound) return;
    const pod = bound;
    this.#event(
      pod,
      "Normal",
      "Scheduled",
      `Successfully assigned ${run.ns}/${run.name} to ${this.nodeName}`,
    );
    const deadlineS = pod.spec.activeDeadlineSeconds as number | undefined;
    if (deadlineS !== undefined) {
      const t = setTimeout(() => {
        this.#event(
          pod,
          "Normal",
          "DeadlineExceeded",
          "Pod was active on the node longer than the specified deadline",
        );
        this.#stop(run, Math.min(this.#opts.maxGraceMs ?? 3000, 1000), {
          phase: "Failed",
          reason: "DeadlineExceeded",
          message: "Pod was active on the node longer than the specified deadline",
        });
      }, deadlineS * 1000);
      run.timers.add(t);
    }
    // --- images: the imagePullError fault, or (podman mode) an image not in local storage
    const inits0 = (pod.spec.initContainers ?? []) as KObj[];
    const all = [...inits0, ...(pod.spec.containers ?? [])] as KObj[];
    const missingImage = async (): Promise<KObj | undefined> => {
      if (fault.imagePull) return all[0];
      if (this.#opts.mode !== "podman") return undefined;
      for (const c of all) if (!(await this.#imageExists(c.image))) return c;
      return undefined;
    };
    let back = false;
    let delay = 400;
    for (let c = await missingImage(); c && !run.stopped; c = await missingImage()) {
      const image = c.image ?? "";
      const reason = back ? "ImagePullBackOff" : "ErrImagePull";
      const message = back
        ? `Back-off pulling image "${image}"`
        : fault.imagePull
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
      this.#status(run, () => {});
      this.#event(pod, "Warning", back ? "BackOff" : "Failed", message);
      back = !back;
      await this.#sleep(run, delay);
      delay = Math.min(delay * 2, 5000); // like the kubelet's back-off (shorter)
    }
    if (run.stopped) return;
    for (const c of all) {
      const st = run.cstate.get(c.name)?.state;
      if (st && "waiting" in st) run.cstate.delete(c.name); // the image turned up
    }
    // --- volumes
    let mounts: Map<string, string> | undefined;
    while (!run.stopped) {
      try {
        mounts = await this.#prepareVolumes(run, pod);
        break;
      } catch (e) {
        if (!(e instanceof MountError)) throw e;
        this.#event(pod, "Warning", "FailedMount", e.message);
        await this.#sleep(run, 500);
      }
    }
    if (run.stopped || !mounts) return;
    if (this.#cluster && pod.spec.automountServiceAccountToken !== false) {
      run.saDir = `${run.tmp}/serviceaccount`;
      await Deno.mkdir(run.saDir, { recursive: true });
      await Deno.writeTextFile(`${run.saDir}/token`, this.#cluster.token, { mode: 0o644 });
      await Deno.writeTextFile(`${run.saDir}/ca.crt`, this.#cluster.caCert, { mode: 0o644 });
      await Deno.writeTextFile(`${run.saDir}/namespace`, run.ns, { mode: 0o644 });
    }
    // --- init containers
    const inits = (pod.spec.initContainers ?? []) as KObj[];
    for (const c of inits) {
      const t = await this.#runOne(run, pod, c, true, mounts, undefined);
      if (!t || run.stopped) return this.#finish(run);
      if (t.exitCode !== 0) {
        this.#status(run, (s) => {
          s.phase = "Failed";
          this.#setCond(
            s,
            "Initialized",
            false,
            "ContainersNotInitialized",
            `containers with incomplete status: [${c.name}]`,
          );
        });
        return this.#finish(run);
      }
    }
    if (inits.length) {
      this.#status(run, (s) => this.#setCond(s, "Initialized", true));
    }
    // --- main containers
    const containers = (pod.spec.containers ?? []) as KObj[];
    let startedAll = false;
    let started = 0;
    const onStart = () => {
      started++;
      if (started < containers.length || startedAll) return;
      startedAll = true;
      this.#status(run, (s) => {
        s.phase = "Running";
        this.#setCond(s, "ContainersReady", true);
        this.#setCond(s, "Ready", true);
      });
      if (fault.evict) {
        const t = setTimeout(() => {
          const msg = "The node was low on resource: memory. Threshold quantity: 100Mi, " +
            "available: 51200Ki. ";
          this.#event(pod, "Warning", "Evicted", msg);
          this.#stop(run, 0, { phase: "Failed", reason: "Evicted", message: msg });
        }, fault.evictOpts.afterMs ?? 300);
        run.timers.add(t);
      }
      if (fault.extDelete) {
        const t = setTimeout(() => {
          this.#log(`externalDelete fault: deleting ${run.ns}/${run.name}`);
          this.deletePod(run.ns, run.name, fault.extOpts.gracePeriodSeconds ?? 1);
        }, fault.extOpts.afterMs ?? 200);
        run.timers.add(t);
      }
    };
    const oomFor = (name: string): number | undefined =>
      fault.oom && (!fault.oomOpts.containers || fault.oomOpts.containers.includes(name))
        ? fault.oomOpts.afterMs ?? 300
        : undefined;
    const policy = (pod.spec.restartPolicy ?? "Always") as string;
    const withRestarts = async (c: KObj) => {
      let first = true;
      for (;;) {
        const t = await this.#runOne(
          run,
          pod,
          c,
          false,
          mounts!,
          oomFor(c.name),
          first ? onStart : undefined,
        );
        first = false;
        if (!t || run.stopped) return;
        if (policy === "Never" || (policy === "OnFailure" && t.exitCode === 0)) return;
        // restartPolicy Always / OnFailure: back off, then run the container again
        const cur = run.cstate.get(c.name)!;
        const count = (run.restarts.get(c.name)?.count ?? 0) + 1;
        run.restarts.set(c.name, { count, lastState: cur.state });
        const backoffMs = Math.min(200 * 2 ** (count - 1), 3000);
        if (t.exitCode !== 0) {
          run.cstate.set(c.name, {
            ...cur,
            state: {
              waiting: {
                reason: "CrashLoopBackOff",
                message: `back-off ${backoffMs}ms restarting failed container=${c.name} ` +
                  `pod=${run.name}_${run.ns}(${run.uid})`,
              },
            },
          });
          this.#status(run, () => {});
        }
        await this.#sleep(run, backoffMs);
        if (run.stopped) return;
      }
    };
    await Promise.all(containers.map(withRestarts));
    this.#finish(run);
  }

  #finish(run: PodRun): void {
    this.#status(run, (s) => {
      const states = [...run.cstate.values()].filter((c) => !c.init).map((c) => c.state);
      const failedInit = [...run.cstate.values()].some((c) =>
        c.init && "terminated" in c.state && c.state.terminated.exitCode !== 0
      );
      const allTerminated = states.length > 0 && states.every((st) => "terminated" in st);
      const ok = allTerminated &&
        states.every((st) => "terminated" in st && st.terminated.exitCode === 0);
      if (run.override) {
        s.phase = run.override.phase;
        s.reason = run.override.reason;
        s.message = run.override.message;
        if (run.override.reason === "Evicted") {
          this.#setCond(s, "DisruptionTarget", true, "TerminationByKubelet", s.message);
        }
      } else if (failedInit) s.phase = "Failed";
      else if (allTerminated) s.phase = ok ? "Succeeded" : "Failed";
      else if (run.stopped) s.phase = "Failed";
      this.#setCond(s, "ContainersReady", false, "PodCompleted");
      this.#setCond(s, "Ready", false, "PodCompleted");
    });
  }

  /** Resolves env (retrying on CreateContainerConfigError), runs one container. */
  async #runOne(
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
        env = this.#resolveEnv(pod, c);
        break;
      } catch (e) {
        if (!(e instanceof EnvError)) throw e;
        run.cstate.set(c.name, {
          state: { waiting: { reason: "CreateContainerConfigError", message: e.message } },
          ready: false,
          started: false,
          init,
        });
        this.#status(run, () => {});
        this.#event(pod, "Warning", "Failed", `Error: ${e.message}`);
        await this.#sleep(run, 500);
      }
    }
    if (run.stopped || !env) return undefined;
    const mounts: MountSpec[] = [];
    for (const m of (c.volumeMounts ?? []) as KObj[]) {
      const host = volumes.get(m.name);
      if (!host) {
        const msg = `volume "${m.name}" not found in pod spec`;
        run.cstate.set(c.name, {
          state: { waiting: { reason: "CreateContainerConfigError", message: msg } },
          ready: false,
          started: false,
          init,
        });
        this.#status(run, () => {});
        return undefined;
      }
      let hostPath = host;
      if (m.subPath) {
        hostPath = `${host}/${m.subPath}`;
        await Deno.mkdir(hostPath, { recursive: true }).catch(() => {});
      }
      mounts.push({ hostPath, mountPath: m.mountPath, readOnly: !!m.readOnly });
    }
    if (run.saDir && !mounts.some((m) => m.mountPath === SERVICE_ACCOUNT_DIR)) {
      mounts.push({ hostPath: run.saDir, mountPath: SERVICE_ACCOUNT_DIR, readOnly: true });
    }
    if (this.#cluster) {
      const { host, port } = this.#cluster;
      const k8sEnv: Record<string, string> = {
        KUBERNETES_SERVICE_HOST: host,
        KUBERNETES_SERVICE_PORT: String(port),
        KUBERNETES_SERVICE_PORT_HTTPS: String(port),
        KUBERNETES_PORT: `tcp://${host}:${port}`,
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
      mode: await this.#modeFor(c.image),
      runAsUser: sc.runAsUser,
      runAsGroup: sc.runAsGroup,
      privileged: sc.privileged,
    };
    launch = this.#opts.rewrite?.(launch) ?? launch;
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
        ? this.#startPodman(run, launch, log)
        : await this.#startProcess(run, launch, log);
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
      this.#status(run, () => {});
      this.#event(pod, "Warning", "Failed", `Error: ${t.message}`);
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
    this.#event(pod, "Normal", "Started", `Started container ${c.name}`);
    this.#status(run, () => {});
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
      t = { exitCode: code, reason: code === 0 ? "Completed" : "Error" };
      const sig = handle.signal?.();
      if (sig) t.signal = sig;
    }
    run.cstate.set(c.name, {
      state: { terminated: { ...t, startedAt, finishedAt: now(), containerID } },
      ready: false,
      started: false,
      init,
      containerID,
    });
    this.#status(run, () => {});
    return t;
  }

  #resolveEnv(
    pod: KObj,
    c: KObj,
  ): { env: Record<string, string>; secretEnv: Record<string, string> } {
    const ns = pod.metadata.namespace;
    const env: Record<string, string> = {};
    const secretEnv: Record<string, string> = {};
    const dec = new TextDecoder();
    const getSecret = (name: string, optional: boolean) => {
      const s = this.#store.get("secrets", ns, name);
      if (!s && !optional) throw new EnvError(`secret "${name}" not found`);
      return s;
    };
    const getCm = (name: string, optional: boolean) => {
      const s = this.#store.get("configmaps", ns, name);
      if (!s && !optional) throw new EnvError(`configmap "${name}" not found`);
      return s;
    };
    const secretVal = (s: KObj, key: string): string | undefined => {
      const b64 = s.data?.[key];
      if (b64 === undefined) return undefined;
      return dec.decode(Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0)));
    };
    const set = (name: string, v: string, secret: boolean) => {
      delete env[name];
      delete secretEnv[name];
      (secret ? secretEnv : env)[name] = v;
    };
    for (const ef of (c.envFrom ?? []) as KObj[]) {
      const prefix = ef.prefix ?? "";
      if (ef.secretRef) {
        const s = getSecret(ef.secretRef.name, !!ef.secretRef.optional);
        for (const k of Object.keys(s?.data ?? {})) set(prefix + k, secretVal(s!, k)!, true);
      } else if (ef.configMapRef) {
        const cm = getCm(ef.configMapRef.name, !!ef.configMapRef.optional);
        for (const [k, v] of Object.entries(cm?.data ?? {})) set(prefix + k, v as string, true);
      }
    }
    const expand = (s: string) =>
      s.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)|\$\$/g, (all, name) => {
        if (all === "$$") return "$";
        const v = env[name] ?? secretEnv[name];
        return v === undefined ? all : v;
      });
    for (const e of (c.env ?? []) as KObj[]) {
      if (e.valueFrom === undefined) {
        set(e.name, expand(e.value ?? ""), false);
        continue;
      }
      const vf = e.valueFrom;
      if (vf.secretKeyRef) {
        const r = vf.secretKeyRef;
        const s = getSecret(r.name, !!r.optional);
        if (!s) continue;
        const v = secretVal(s, r.key);
        if (v === undefined) {
          if (r.optional) continue;
          throw new EnvError(`couldn't find key ${r.key} in Secret ${ns}/${r.name}`);
        }
        set(e.name, v, true);
      } else if (vf.configMapKeyRef) {
        const r = vf.configMapKeyRef;
        const cm = getCm(r.name, !!r.optional);
        if (!cm) continue;
        const v = cm.data?.[r.key];
        if (v === undefined) {
          if (r.optional) continue;
          throw new EnvError(`couldn't find key ${r.key} in ConfigMap ${ns}/${r.name}`);
        }
        set(e.name, v, true);
      } else if (vf.fieldRef) {
        const p = vf.fieldRef.fieldPath as string;
        const lab = p.match(/^metadata\.(labels|annotations)\['(.+)'\]$/);
        let v: string | undefined;
        if (lab) v = pod.metadata[lab[1]]?.[lab[2]];
        else {
          const map: Record<string, string | undefined> = {
            "metadata.name": pod.metadata.name,
            "metadata.namespace": ns,
            "metadata.uid": pod.metadata.uid,
            "spec.nodeName": this.nodeName,
            "spec.serviceAccountName": pod.spec.serviceAccountName ?? "default",
            "status.podIP": "127.0.0.1",
            "status.hostIP": "127.0.0.1",
          };
          v = map[p];
        }
        set(e.name, v ?? "", false);
      } else if (vf.resourceFieldRef) {
        const r = c.resources?.limits?.[vf.resourceFieldRef.resource.replace(/^limits\./, "")];
        set(e.name, r === undefined ? "0" : String(r), false);
      }
    }
    if (!("HOSTNAME" in env) && !("HOSTNAME" in secretEnv)) env.HOSTNAME = pod.metadata.name;
    return { env, secretEnv };
  }

  async #prepareVolumes(run: PodRun, pod: KObj): Promise<Map<string, string>> {
    const vols = (pod.spec.volumes ?? []) as KObj[];
    const out = new Map<string, string>();
    if (!run.tmp) run.tmp = await Deno.makeTempDir({ prefix: "kube-sim-pod-" });
    const ns = pod.metadata.namespace;
    const dec = (b64: string) => Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
    for (const v of vols) {
      const dir = `${run.tmp}/volumes/${v.name}`;
      if (v.hostPath) {
        out.set(v.name, v.hostPath.path);
        continue;
      }
      await Deno.mkdir(dir, { recursive: true });
      if (v.emptyDir) {
        await Deno.chmod(dir, 0o777);
      } else if (v.secret || v.configMap) {
        const isSecret = !!v.secret;
        const src = v.secret ?? v.configMap;
        const srcName = isSecret ? src.secretName : src.name;
        const obj = this.#store.get(isSecret ? "secrets" : "configmaps", ns, srcName);
        if (!obj) {
          if (src.optional) {
            out.set(v.name, dir);
            continue;
          }
          throw new MountError(
            `MountVolume.SetUp failed for volume "${v.name}" : ${
              isSecret ? "secret" : "configmap"
            } "${srcName}" not found`,
          );
        }
        const data = new Map<string, Uint8Array>();
        if (isSecret) {
          for (const [k, b] of Object.entries(obj.data ?? {})) data.set(k, dec(b as string));
        } else {
          for (const [k, s] of Object.entries(obj.data ?? {})) {
            data.set(k, new TextEncoder().encode(s as string));
          }
          for (const [k, b] of Object.entries(obj.binaryData ?? {})) data.set(k, dec(b as string));
        }
        const defaultMode = (src.defaultMode ?? 0o644) as number;
        const items = src.items as KObj[] | undefined;
        const files: { path: string; bytes: Uint8Array; mode: number }[] = [];
        if (items) {
          for (const it of items) {
            const b = data.get(it.key);
            if (!b) {
              if (src.optional) continue;
              throw new MountError(
                `MountVolume.SetUp failed for volume "${v.name}" : references non-existent ` +
                  `${isSecret ? "secret" : "config map"} key: ${it.key}`,
              );
            }
            files.push({ path: it.path, bytes: b, mode: it.mode ?? defaultMode });
          }
        } else {
          for (const [k, b] of data) files.push({ path: k, bytes: b, mode: defaultMode });
        }
        for (const f of files) {
          const p = `${dir}/${f.path}`;
          await Deno.mkdir(p.slice(0, p.lastIndexOf("/")), { recursive: true });
          await Deno.writeFile(p, f.bytes, { mode: f.mode });
          await Deno.chmod(p, f.mode);
        }
      } else {
        throw new MountError(
          `MountVolume.SetUp failed for volume "${v.name}" : kube-sim supports only emptyDir, ` +
            `secret, configMap and hostPath volumes`,
        );
      }
      out.set(v.name, dir);
    }
    return out;
  }

  /** Whether an image is in local podman storage (only positive answers are cached). */
  #imageExists(image: string): Promise<boolean> {
    let p = this.#imageCache.get(image);
    if (!p) {
      p = new Deno.Command("podman", {
        args: ["image", "exists", image],
        stdout: "null",
        stderr: "null",
      }).output().then((o) => o.success).catch(() => false);
      this.#imageCache.set(image, p);
      p.then((ok) => {
        if (!ok) this.#imageCache.delete(image);
      });
    }
    return p;
  }

  #modeFor(image: string): Promise<"process" | "podman"> {
    const mode = this.#opts.mode ?? "auto";
    if (mode !== "auto") return Promise.resolve(mode);
    return this.#imageExists(image).then((ok) => ok ? "podman" : "process");
  }

  #pump(
    stream: ReadableStream<Uint8Array>,
    which: "stdout" | "stderr",
    log: LogBuffer,
  ): Promise<void> {
    const dec = new TextDecoder();
    return (async () => {
      try {
        for await (const chunk of stream) log.append(which, dec.decode(chunk, { stream: true }));
        log.append(which, dec.decode());
      } catch { /* stream ended abruptly */ }
    })();
  }

  async #startProcess(run: PodRun, l: ContainerLaunch, log: LogBuffer): Promise<Handle> {
    const argv = [...(l.command ?? []), ...l.args];
    if (!argv.length) {
      throw new Error(
        `kube-sim process mode: container "${l.container}" has neither command nor args`,
      );
    }
    const env: Record<string, string> = {};
    const hostEnv = Deno.env.toObject();
    for (const k of ["PATH", "HOME", "DENO_DIR"]) if (hostEnv[k]) env[k] = hostEnv[k];
    Object.assign(env, this.#opts.processEnv ?? {}, l.env, l.secretEnv);
    const resolved = await resolveExecutable(argv[0], env.PATH ?? hostEnv.PATH ?? "");
    if (!resolved) throw new Error(`exec: "${argv[0]}": executable file not found in $PATH`);
    argv[0] = resolved;
    let cwd = l.workingDir ?? run.tmp!;
    let cmd: string;
    let args: string[];
    const useNs = this.#isRoot && l.mounts.length > 0;
    if (useNs) {
      const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
      const lines = ["set -e"];
      const plan = planMountPoints(l.mounts.map((m) => m.mountPath), l.workingDir);
      for (const p of plan.hostCreate) this.#refMountPoint(run, p);
      if (plan.overlays.length) {
        // Missing mount points are made in overlays private to this container, so the host's
        // directories stay untouched.
        const t = `${run.tmp}/ov-${l.container}`;
        await Deno.mkdir(t, { recursive: true });
        lines.push(`mount -t tmpfs kube-sim ${q(t)}`);
        plan.overlays.forEach((dir, i) => {
          lines.push(`mkdir ${q(`${t}/u${i}`)} ${q(`${t}/w${i}`)}`);
          lines.push(
            `mount -t overlay kube-sim -o ${
              q(`lowerdir=${dir},upperdir=${t}/u${i},workdir=${t}/w${i}`)
            } ${q(dir)}`,
          );
        });
      }
      for (const m of [...l.mounts].sort((a, b) => a.mountPath.length - b.mountPath.length)) {
        lines.push(`mkdir -p ${q(m.mountPath)}`);
        lines.push(`mount --bind ${q(m.hostPath)} ${q(m.mountPath)}`);
        if (m.readOnly) lines.push(`mount -o remount,bind,ro ${q(m.mountPath)}`);
      }
      if (l.workingDir) lines.push(`mkdir -p ${q(l.workingDir)}`, `cd ${q(l.workingDir)}`);
      lines.push(`exec "$@"`);
      cmd = "setsid";
      args = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "/bin/sh",
        "-c",
        lines.join("\n"),
        "sh",
        ...argv,
      ];
      cwd = run.tmp!;
    } else {
      if (l.mounts.length) {
        env.KUBE_SIM_MOUNTS = JSON.stringify(
          Object.fromEntries(l.mounts.map((m) => [m.mountPath, m.hostPath])),
        );
        for (const m of l.mounts) {
          if (l.workingDir === m.mountPath || l.workingDir?.startsWith(`${m.mountPath}/`)) {
            cwd = m.hostPath + l.workingDir.slice(m.mountPath.length);
          }
        }
      }
      await Deno.mkdir(cwd, { recursive: true }).catch(() => {});
      cmd = "setsid";
      args = argv;
    }
    const child = new Deno.Command(cmd, {
      args,
      cwd,
      env,
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const pid = child.pid;
    const pumps = Promise.all([
      this.#pump(child.stdout, "stdout", log),
      this.#pump(child.stderr, "stderr", log),
    ]);
    let killTimer: ReturnType<typeof setTimeout> | undefined;
    const killGroup = (sig: Deno.Signal) => {
      try {
        Deno.kill(-pid, sig);
      } catch {
        try {
          child.kill(sig);
        } catch { /* gone */ }
      }
    };
    let sig: number | undefined;
    const exited = child.status.then(async (st) => {
      clearTimeout(killTimer);
      killGroup("SIGKILL"); // leftovers of the container's process group
      await pumps;
      sig = st.signal ? signalExitCode(st.signal) - 128 : undefined;
      return st.signal ? signalExitCode(st.signal) : st.code;
    });
    return {
      exited,
      signal: () => sig,
      kill: () => killGroup("SIGKILL"),
      terminate: (graceMs) => {
        killGroup("SIGTERM");
        clearTimeout(killTimer);
        killTimer = setTimeout(() => killGroup("SIGKILL"), graceMs);
      },
    };
  }

  #refMountPoint(run: PodRun, path: string): void {
    // Record which missing directories mkdir -p will create, so they can be removed later.
    const parts = path.split("/").filter(Boolean);
    let cur = "";
    for (const p of parts) {
      cur += `/${p}`;
      let exists = true;
      try {
        Deno.statSync(cur);
      } catch {
        exists = false;
      }
      if (!exists || createdMountPoints.has(cur)) {
        createdMountPoints.set(cur, (createdMountPoints.get(cur) ?? 0) + 1);
        run.mountRefs.push(cur);
      }
    }
  }

  #startPodman(run: PodRun, l: ContainerLaunch, log: LogBuffer): Handle {
    const restarts = run.restarts.get(l.container)?.count ?? 0;
    const name = `kube-sim-${run.name}-${l.container}-${run.uid.slice(0, 8)}${
      restarts ? `-r${restarts}` : ""
    }`.replace(
      /[^a-zA-Z0-9_.-]/g,
      "-",
    );
    run.podmanNames.add(name);
    const args = ["run", "--rm", "--name", name, "--network", "host", "--pull", "never"];
    args.push("--hostname", run.name);
    for (const m of l.mounts) {
      args.push("-v", `${m.hostPath}:${m.mountPath}${m.readOnly ? ":ro" : ""}`);
    }
    if (l.workingDir) args.push("-w", l.workingDir);
    if (l.runAsUser !== undefined) {
      args.push("--user", `${l.runAsUser}${l.runAsGroup !== undefined ? `:${l.runAsGroup}` : ""}`);
    }
    if (l.privileged) args.push("--privileged");
    for (const [k, v] of Object.entries(l.env)) args.push("--env", `${k}=${v}`);
    const podmanEnv: Record<string, string> = {};
    const hostEnv = Deno.env.toObject();
    for (const k of ["PATH", "HOME", "TMPDIR", "XDG_RUNTIME_DIR", "CONTAINERS_CONF"]) {
      if (hostEnv[k]) podmanEnv[k] = hostEnv[k];
    }
    const fileEnv: string[] = [];
    for (const [k, v] of Object.entries(l.secretEnv)) {
      if (!PODMAN_ENV_DENY.test(k)) {
        // `--env NAME` takes the value from podman's own environment: any bytes, never argv
        podmanEnv[k] = v;
        args.push("--env", k);
      } else if (!v.includes("\n")) {
        fileEnv.push(`${k}=${v}`); // names podman itself reads go through a 0600 env file
      } else {
        throw new Error(`kube-sim cannot pass a multi-line value for ${k} to podman`);
      }
    }
    if (fileEnv.length) {
      const f = `${run.tmp}/env-${l.container}`;
      Deno.writeTextFileSync(f, fileEnv.join("\n") + "\n", { mode: 0o600 });
      args.push("--env-file", f);
    }
    if (l.command) args.push("--entrypoint", JSON.stringify(l.command));
    args.push(l.image, ...l.args);
    const child = new Deno.Command("podman", {
      args,
      env: podmanEnv,
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const pumps = Promise.all([
      this.#pump(child.stdout, "stdout", log),
      this.#pump(child.stderr, "stderr", log),
    ]);
    let killTimer: ReturnType<typeof setTimeout> | undefined;
    const podmanKill = () =>
      new Deno.Command("podman", {
        args: ["kill", "--signal", "KILL", name],
        stdout: "null",
        stderr: "null",
      }).output().catch(() => {});
    const exited = child.status.then(async (st) => {
      clearTimeout(killTimer);
      await pumps;
      return st.signal ? signalExitCode(st.signal) : st.code;
    });
    const hardKill = () => {
      this.#track(podmanKill());
      // If the container never came up, podman run itself must go.
      const t = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 2000);
      exited.finally(() => clearTimeout(t));
    };
    return {
      exited,
      kill: hardKill,
      terminate: (graceMs) => {
        try {
          child.kill("SIGTERM"); // podman run proxies it to the container
        } catch { /* gone */ }
        clearTimeout(killTimer);
        killTimer = setTimeout(hardKill, graceMs);
      },
    };
  }

  async #cleanup(run: PodRun): Promise<void> {
    for (const name of run.podmanNames) {
      await new Deno.Command("podman", {
        args: ["rm", "-f", "--ignore", "-t", "0", name],
        stdout: "null",
        stderr: "null",
      }).output().catch(() => {});
    }
    for (const p of run.mountRefs.reverse()) {
      const n = (createdMountPoints.get(p) ?? 1) - 1;
      if (n > 0) createdMountPoints.set(p, n);
      else {
        createdMountPoints.delete(p);
        await Deno.remove(p).catch(() => {});
      }
    }
    run.mountRefs = [];
    if (run.tmp) await Deno.remove(run.tmp, { recursive: true }).catch(() => {});
  }
}

function existsOnHost(p: string): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Decides how the missing directories a container needs (mount points, workingDir) come to
 * exist: under another mount of the container they are made inside that volume; otherwise
 * the nearest existing host ancestor is overlaid (in the container's mount namespace); only
 * directories right under `/` are created on the host (reference counted, removed later).
 */
export function planMountPoints(
  mountPaths: string[],
  workingDir?: string,
  exists: (p: string) => boolean = existsOnHost,
): { overlays: string[]; hostCreate: string[] } {
  const norm = (p: string) => "/" + p.split("/").filter(Boolean).join("/");
  const mounts = mountPaths.map(norm);
  const under = (p: string, dir: string) => dir === "/" || p === dir || p.startsWith(`${dir}/`);
  const ancestors = new Set<string>();
  const hostCreate: string[] = [];
  for (const p of [...mounts, ...(workingDir ? [norm(workingDir)] : [])]) {
    if (p === "/" || exists(p)) continue;
    if (mounts.some((m) => m !== p && under(p, m))) continue;
    let a = p.slice(0, p.lastIndexOf("/")) || "/";
    while (a !== "/" && !exists(a)) a = a.slice(0, a.lastIndexOf("/")) || "/";
    if (a === "/") hostCreate.push(p);
    else ancestors.add(a);
  }
  const overlays = [...ancestors].filter((a) => ![...ancestors].some((b) => b !== a && under(a, b)))
    .sort((x, y) => x.length - y.length);
  return { overlays, hostCreate };
}

async function resolveExecutable(cmd: string, path: string): Promise<string | undefined> {
  if (cmd.includes("/")) {
    try {
      await Deno.stat(cmd);
      return cmd;
    } catch {
      return undefined;
    }
  }
  for (const dir of path.split(":").filter(Boolean)) {
    try {
      const st = await Deno.stat(`${dir}/${cmd}`);
      if (st.isFile && (st.mode ?? 0o111) & 0o111) return `${dir}/${cmd}`;
    } catch { /* next */ }
  }
  return undefined;
}
