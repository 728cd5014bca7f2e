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

import type { KObj, ObjectStore } from "./store.ts";
import type { Faults } from "./faults.ts";
import type { LogBuffer } from "./logs.ts";
import { type ClusterInfo, type KubeletHost, type KubeletOptions, type PodRun } from "./pod_run.ts";
import { EventRecorder, setCond, writeContainerStatuses } from "./pod_status.ts";
import { mountVolumes, schedulePod, waitForImages } from "./pod_setup.ts";
import { runOne } from "./container.ts";
import { nodeObject } from "./pod_status.ts";
import type { PodNetwork } from "./network.ts";
import { releaseMountPoints } from "./runtime_process.ts";
import { PodmanImages, removePodmanContainers } from "./runtime_podman.ts";

export type { ClusterInfo, ContainerLaunch, KubeletOptions, MountSpec } from "./pod_run.ts";
export { SERVICE_ACCOUNT_DIR } from "./pod_run.ts";
export { parseQuantity } from "./quantity.ts";
export { planMountPoints } from "./volumes.ts";

/** The simulated scheduler and kubelet. Create with {@link Kubelet}, then `start()`. */
export class Kubelet {
  readonly nodeName: string;
  #store: ObjectStore;
  #faults: Faults;
  #opts: KubeletOptions;
  #runs = new Map<string, PodRun>();
  #unsub = () => {};
  #closed = false;
  #images = new PodmanImages();
  #pending = new Set<Promise<unknown>>();
  #cluster?: ClusterInfo;
  #events: EventRecorder;
  #host: KubeletHost;
  #network?: PodNetwork;

  constructor(store: ObjectStore, faults: Faults, opts: KubeletOptions = {}) {
    this.#store = store;
    this.#faults = faults;
    this.#opts = opts;
    this.nodeName = opts.nodeName ?? "kube-sim-node";
    this.#events = new EventRecorder(store, this.nodeName);
    // deno-lint-ignore no-this-alias
    const self = this;
    this.#host = {
      store,
      faults,
      opts,
      nodeName: this.nodeName,
      get cluster() {
        return self.#cluster;
      },
      get network() {
        return self.#network;
      },
      get nodeIP() {
        return self.nodeIP;
      },
      status: (run, fn) => this.status(run, fn),
      event: (pod, type, reason, message) => this.#events.record(pod, type, reason, message),
      sleep: (run, ms) => this.#sleep(run, ms),
      stop: (run, graceMs, override) => this.#stop(run, graceMs, override),
      deletePod: (ns, name, grace) => this.deletePod(ns, name, grace),
      track: (p) => this.#track(p),
      log: (msg) => this.#log(msg),
      imageExists: (image) => this.#images.exists(image),
      modeFor: (image) => this.#modeFor(image),
    };
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

  /** Gives every pod its own network namespace on this pod network (before `start()`). */
  setNetwork(net: PodNetwork | undefined): void {
    this.#network = net;
  }

  /** The node's address: on the pod network when there is one, else 127.0.0.1. */
  get nodeIP(): string {
    return this.#network?.nodeIP ?? "127.0.0.1";
  }

  /** Registers the node and starts handling pods. */
  start(): void {
    this.#store.create("nodes", nodeObject(this.#opts, this.nodeName, this.nodeIP));
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
    this.#events.record(
      pod,
      "Normal",
      "Killing",
      `Stopping container ${pod.spec.containers?.[0]?.name}`,
    );
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

  /** Changes a pod's status and rewrites its container statuses from the run. */
  status(run: PodRun, fn: (status: KObj["status"], pod: KObj) => void): KObj | undefined {
    return this.#store.mutate("pods", run.ns, run.name, (o) => {
      if (o.metadata.uid !== run.uid) return;
      o.status ??= {};
      fn(o.status, o);
      writeContainerStatuses(run, o);
    });
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
    await this.#sleep(run, this.#opts.stepMs ?? 20);
    const pod = await schedulePod(this.#host, run);
    if (!pod) return;
    await waitForImages(this.#host, run, pod, fault.imagePull);
    if (run.stopped) return;
    const mounts = await mountVolumes(this.#host, run, pod);
    if (!mounts) return;
    // --- init containers
    const inits = (pod.spec.initContainers ?? []) as KObj[];
    for (const c of inits) {
      const t = await runOne(this.#host, run, pod, c, true, mounts, undefined);
      if (!t || run.stopped) return this.#finish(run);
      if (t.exitCode !== 0) {
        this.status(run, (s) => {
          s.phase = "Failed";
          setCond(
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
      this.status(run, (s) => setCond(s, "Initialized", true));
    }
    // --- main containers
    const containers = (pod.spec.containers ?? []) as KObj[];
    let startedAll = false;
    let started = 0;
    const onStart = () => {
      started++;
      if (started < containers.length || startedAll) return;
      startedAll = true;
      this.status(run, (s) => {
        s.phase = "Running";
        setCond(s, "ContainersReady", true);
        setCond(s, "Ready", true);
      });
      if (fault.evict) {
        const t = setTimeout(() => {
          const msg = "The node was low on resource: memory. Threshold quantity: 100Mi, " +
            "available: 51200Ki. ";
          this.#events.record(pod, "Warning", "Evicted", msg);
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
        const t = await runOne(
          this.#host,
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
          this.status(run, () => {});
        }
        await this.#sleep(run, backoffMs);
        if (run.stopped) return;
      }
    };
    await Promise.all(containers.map(withRestarts));
    this.#finish(run);
  }

  #finish(run: PodRun): void {
    this.status(run, (s) => {
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
          setCond(s, "DisruptionTarget", true, "TerminationByKubelet", s.message);
        }
      } else if (failedInit) s.phase = "Failed";
      else if (allTerminated) s.phase = ok ? "Succeeded" : "Failed";
      else if (run.stopped) s.phase = "Failed";
      setCond(s, "ContainersReady", false, "PodCompleted");
      setCond(s, "Ready", false, "PodCompleted");
    });
  }

  #modeFor(image: string): Promise<"process" | "podman"> {
    const mode = this.#opts.mode ?? "auto";
    if (mode !== "auto") return Promise.resolve(mode);
    return this.#images.exists(image).then((ok) => ok ? "podman" : "process");
  }

  async #cleanup(run: PodRun): Promise<void> {
    await removePodmanContainers(run);
    await releaseMountPoints(run);
    await this.#network?.remove(run.uid);
    if (run.tmp) await Deno.remove(run.tmp, { recursive: true }).catch(() => {});
  }
}
